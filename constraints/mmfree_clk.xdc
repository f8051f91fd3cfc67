# mmfree units: one synchronous clock domain; 5 ns = 200 MHz (edit for your target)
create_clock -name clk -period 5.000 [get_ports clk]
