"""README.zh-CN.md stays in step with README.md: the same settings (from
collector/settings.py), the same endpoints, the same shell commands."""

from __future__ import annotations

import re

from conftest import ROOT

from collector.settings import describe

EN = (ROOT / "README.md").read_text()
ZH = (ROOT / "README.zh-CN.md").read_text()
SETTING_ROW = re.compile(r"^\| `(--[\w-]+)` \| `(\w+)` \| ([^|]+) \|", re.M)


def settings_rows(readme: str) -> dict[str, tuple[str, str]]:
    return {m.group(2): (m.group(1), m.group(3).strip()) for m in SETTING_ROW.finditer(readme)}


def test_the_english_readme_links_the_chinese_one_at_the_top():
    assert "(README.zh-CN.md)" in "\n".join(EN.splitlines()[:5])
    assert "(README.md)" in "\n".join(ZH.splitlines()[:5])


def test_the_chinese_settings_table_lists_every_setting_with_its_default():
    rows = settings_rows(ZH)
    missing = []
    for flag, env, default, help_text in describe():
        shown = f"`{default}`" if default else "(空)"
        if rows.get(env) != (flag, shown):
            missing.append(f"| `{flag}` | `{env}` | {shown} | （中文说明）{help_text} |")
    assert not missing, "README.zh-CN.md 配置项表缺少或写错这些行 / lacks or misstates these rows:\n" + "\n".join(missing)
    unknown = set(rows) - {env for _, env, _, _ in describe()}
    assert not unknown, f"README.zh-CN.md lists settings that do not exist: {sorted(unknown)}"


def endpoint_rows(readme: str, heading: str) -> set[str]:
    section = readme.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    return {m.group(1) for m in re.finditer(r"^\| (`[^|]+`) \|", section, re.M)}


def test_both_readmes_list_the_same_endpoints():
    english = endpoint_rows(EN, "## Endpoints")
    assert len(english) >= 8
    assert endpoint_rows(ZH, "## 接口") == english


def shell_commands(readme: str) -> list[str]:
    """Every line of the ```sh blocks, without comments (which are translated)."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", readme, re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).rstrip()
            if line and not line.lstrip().startswith("#"):
                lines.append(line)
    return lines


def test_both_readmes_give_the_same_commands():
    assert len(shell_commands(EN)) > 15
    assert shell_commands(ZH) == shell_commands(EN)
