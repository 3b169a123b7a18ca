"""The fast front-matter reader agrees with PyYAML wherever it answers at all."""

import frontmatter
from hypothesis import given, settings
from hypothesis import strategies as st

from preserver.articles import _flat_front_matter

keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(keys, st.one_of(values, st.lists(values, max_size=3))), max_size=6),
       st.text(max_size=40))
def test_fast_path_equals_pyyaml(pairs, body):
    lines = []
    for key, value in pairs:
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines += [f"  - {quoted(v)}" for v in value]
        else:
            lines.append(f"{key}: {quoted(value)}")
    text = "---\n" + "\n".join(lines) + "\n---\n" + body
    fast = _flat_front_matter(text)
    if fast is None:
        return  # PyYAML reads it; nothing to compare
    post = frontmatter.loads(text)
    assert fast[0] == post.metadata
    assert fast[1] == post.content


def test_real_shape_takes_the_fast_path():
    text = '---\ntitle: "a \\"b\\" c\\\\"\ntags:\n  - "x"\n  - "y"\n---\n\nbody\n'
    meta, body = _flat_front_matter(text)
    assert meta == {"title": 'a "b" c\\', "tags": ["x", "y"]} == frontmatter.loads(text).metadata
    assert body == "body"
