"""A config that loads never holds a node setting the command builders would refuse later
(that used to surface as a traceback at the first poll, not as a config error)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from dr_console.config import ConfigError, parse_config
from dr_console.core.jobs import check_job_dir
from dr_console.core.validation import check_executable, check_path

VALUES = st.text(
    st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=24
) | st.sampled_from(
    ["barman;id", "$(id)", "-c", "./barman", "bin/barman", "~/jobs", "~", "jobs", "/ok/path",
     "barman", "/opt/barman/bin/barman", "-oProxyCommand=id", "a b"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(barman=VALUES, barman_config=VALUES, job_dir=VALUES)
def test_loaded_node_settings_pass_the_command_checks(
    barman: str, barman_config: str, job_dir: str
) -> None:
    text = (
        '[[nodes]]\nname = "n"\n'
        f"barman = {json.dumps(barman)}\n"
        f"barman_config = {json.dumps(barman_config)}\n"
        f"job_dir = {json.dumps(job_dir)}\n"
    )
    try:
        node = parse_config(text, None).nodes[0]
    except ConfigError:
        return
    assert check_executable(node.barman) == node.barman
    assert node.barman_config is not None and check_path(node.barman_config)
    assert check_job_dir(node.job_dir) == node.job_dir
