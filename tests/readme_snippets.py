"""The code blocks of one README section, as written (for the tests that
run the README's snippets)."""
import re

from tests.seg_fixtures import REPO


def section_blocks(title, lang):
    """The ``lang`` code blocks (text) of the README section ``## title``,
    in order."""
    text = (REPO / 'README.md').read_text()
    start = text.index(f'\n## {title}\n')
    end = text.find('\n## ', start + 1)
    body = text[start:end if end > 0 else None]
    return re.findall(rf'```{lang}\n(.*?)```', body, re.S)


OWN_PROJECT = 'Using mmcvpt from your own project'
