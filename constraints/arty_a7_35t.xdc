# Digilent Arty A7-35T (XC7A35TICSG324-1L), Rev. D/E.
# Pin locations: the Arty A7 reference manual and Digilent's master constraint file
# Arty-A7-35-Master.xdc (repository Digilent/digilent-xdc).
# Port names are the ones mmfree's self-test top uses (mmfree board arty-a7-35t); the
# file also lists the switches, the other buttons and the UART receive line. Vivado warns
# about, and ignores, constraints on ports the design does not have.

set_property CONFIG_VOLTAGE 3.3 [current_design]
set_property CFGBVS VCCO [current_design]

# 100 MHz oscillator
set_property -dict {PACKAGE_PIN E3 IOSTANDARD LVCMOS33} [get_ports clk100mhz]
create_clock -name clk100mhz -period 10.000 [get_ports clk100mhz]

# green LEDs LD4..LD7, active high
set_property -dict {PACKAGE_PIN H5 IOSTANDARD LVCMOS33} [get_ports {led[0]}]
set_property -dict {PACKAGE_PIN J5 IOSTANDARD LVCMOS33} [get_ports {led[1]}]
set_property -dict {PACKAGE_PIN T9 IOSTANDARD LVCMOS33} [get_ports {led[2]}]
set_property -dict {PACKAGE_PIN T10 IOSTANDARD LVCMOS33} [get_ports {led[3]}]

# push buttons BTN0..BTN3 (active high) and the red RESET button ck_rst (active low)
set_property -dict {PACKAGE_PIN D9 IOSTANDARD LVCMOS33} [get_ports {btn[0]}]
set_property -dict {PACKAGE_PIN C9 IOSTANDARD LVCMOS33} [get_ports {btn[1]}]
set_property -dict {PACKAGE_PIN B9 IOSTANDARD LVCMOS33} [get_ports {btn[2]}]
set_property -dict {PACKAGE_PIN B8 IOSTANDARD LVCMOS33} [get_ports {btn[3]}]
set_property -dict {PACKAGE_PIN C2 IOSTANDARD LVCMOS33} [get_ports ck_rst]

# slide switches SW0..SW3
set_property -dict {PACKAGE_PIN A8 IOSTANDARD LVCMOS33} [get_ports {sw[0]}]
set_property -dict {PACKAGE_PIN C11 IOSTANDARD LVCMOS33} [get_ports {sw[1]}]
set_property -dict {PACKAGE_PIN C10 IOSTANDARD LVCMOS33} [get_ports {sw[2]}]
set_property -dict {PACKAGE_PIN A10 IOSTANDARD LVCMOS33} [get_ports {sw[3]}]

# USB serial (FTDI FT2232HQ); names from the host side: uart_rxd_out is the FPGA's
# transmit output, uart_txd_in its receive input
set_property -dict {PACKAGE_PIN D10 IOSTANDARD LVCMOS33} [get_ports uart_rxd_out]
set_property -dict {PACKAGE_PIN A9 IOSTANDARD LVCMOS33} [get_ports uart_txd_in]

# The buttons are asynchronous to the clock; the design synchronises them.
set_false_path -from [get_ports {btn[*] ck_rst}]
