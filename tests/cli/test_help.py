"""Every option of every command explains itself: help text, and its default when it has one."""

import argparse

from mmfree.cli import build_parser
from mmfree.cli.options import RENAMED, HelpFormatter


def _parsers(parser, path=("mmfree",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_option_has_help_with_its_default():
    seen = 0
    for path, parser in _parsers(build_parser()):
        assert issubclass(parser.formatter_class, HelpFormatter), path
        formatter = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            where = f"{' '.join(path)} {action.option_strings[-1]}"
            assert action.help and len(action.help) > 8, f"{where}: no help text"
            text = formatter._get_help_string(action)
            has_default = action.default not in (None, False, argparse.SUPPRESS) \
                and not isinstance(action.default, bool)
            if has_default:
                assert "default" in text, f"{where}: help does not give the default"
            seen += 1
    assert seen > 100


def test_renamed_options_are_hidden_and_name_the_new_spelling(capsys):
    parser = build_parser()
    assert ("project", "--prompt") in RENAMED and ("compare", "--size") in RENAMED
    for path, sub in _parsers(parser):
        if len(path) == 2 and any(cmd == path[1] for cmd, _ in RENAMED):
            text = sub.format_help()
            for cmd, old in RENAMED:
                if cmd == path[1]:
                    assert f"{old} " not in text.replace(f"{old}-", ""), (path, old)
