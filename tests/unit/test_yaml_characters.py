"""A character YAML does not allow in a file (NUL, a control character) is a configuration
problem at its line, as every other YAML fault is, never PyYAML's own exception."""

from __future__ import annotations

import pytest

from federation.config.yamlsrc import parse_yaml
from federation.domain.errors import ConfigError


@pytest.mark.parametrize(("char", "said"), [("\x00", "#x0000"), ("\x1b", "#x001b")])
def test_a_character_yaml_refuses_is_a_problem_at_its_line(char: str, said: str) -> None:
    """``a: b`` then a line holding the character: ConfigError naming the file, line 3, and it."""
    with pytest.raises(ConfigError) as caught:
        parse_yaml(f"a: b\nc: d\ne: f{char}\n", display="mappings/x.yaml")
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == ("mappings/x.yaml", 3)
    assert str(problem) == (
        f"mappings/x.yaml:3: invalid YAML: unacceptable character {said}: "
        "special characters are not allowed"
    )
