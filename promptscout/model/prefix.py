"""Shared-prefix planning for causal scoring: a radix tree over token sequences.

Scoring many prompts repeats work: one prompt over many examples repeats its instruction and
demonstrations (a long common *token* prefix); many input-first prompts (``{text} [T][T] It
was``) repeat each example's tokens; a multi-token label word repeats its text. Every such
sequence is tokenised exactly as on its own, so sharing happens on token prefixes and never
changes a single token: the tree below merges equal prefixes, each of its segments runs through
the network once, and its key/value cache serves every sequence that continues it.

Sharing a short segment costs more (a cache to copy, a smaller batch) than recomputing it, so a
segment is kept as its own node only when it saves enough tokens; otherwise it is folded into its
children (each recomputes it). This module is plain Python; ``engine.py`` runs the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Pick = tuple[int, int, int, int]
"""``(position, token, text_index, class_index)``: add ``log P(token | sequence[:position + 1])``
to ``out[text_index, class_index]``; with ``class_index`` :data:`HIDDEN`, the final hidden state
at ``position`` is the text's hidden state instead (``token`` unused)."""

HIDDEN = -1
"""The class index of a pick that reads the hidden state (see :data:`Pick`)."""


class Node:
    """A segment of tokens that runs through the network once.

    Attributes:
        start: absolute position of the segment's first token (its context is the ancestors'
            segments, ``start`` tokens in all).
        tokens: the segment's token ids.
        picks: where the output head is read inside this segment (absolute positions).
        children: segments that continue this one.
        parent: the node whose cache this one extends: the root (never run: no tokens, or the
            placeholders of a given context, see :func:`under_context`) for the first segments
            of rows; None for the root itself.
        kv: at run time, the segment's key/value cache (backend-specific), kept while children
            still need it.
    """

    __slots__ = ("start", "tokens", "picks", "children", "parent", "kv")

    def __init__(self, start: int, tokens: list[int], parent: Node | None = None) -> None:
        self.start = start
        self.tokens = tokens
        self.picks: list[Pick] = []
        self.children: list[Node] = []
        self.parent = parent
        self.kv: Any = None

    @property
    def end(self) -> int:
        return self.start + len(self.tokens)

    def ancestors(self) -> list[Node]:
        """The nodes whose segments form this node's context, outermost first (the root only
        when it holds a given context)."""
        chain: list[Node] = []
        node = self.parent
        while node is not None and node.tokens:
            chain.append(node)
            node = node.parent
        return chain[::-1]

    def __repr__(self) -> str:
        return f"Node(start={self.start}, len={len(self.tokens)}, children={len(self.children)})"


def build_tree(
    rows: Sequence[Sequence[int]], picks: Sequence[Sequence[Pick]], *, min_shared: int
) -> Node:
    """The shared-prefix tree of ``rows``.

    Args:
        rows: token sequences (each non-empty).
        picks: for each row, where to read the head (positions inside the row).
        min_shared: keep a shared segment as its own node only if it has at least this many
            tokens (shorter ones are recomputed by each continuation: cheaper than the extra
            pass and cache they would need); 1 or less keeps every shared segment, a huge value
            disables sharing.

    Returns:
        The root: a node without tokens whose children start at position 0. Every row's picks
        sit in the node whose segment holds their position; equal rows share one path.
    """
    root = Node(0, [])
    merged: dict[tuple[int, ...], list[Pick]] = {}
    for row, row_picks in zip(rows, picks, strict=True):
        merged.setdefault(tuple(row), []).extend(row_picks)
    stack: list[Node] = [root]  # the path to the previous row's last node
    previous: tuple[int, ...] = ()
    for row in sorted(merged):
        common = _common_prefix(previous, row)
        while len(stack) > 1 and stack[-1].start >= common:
            stack.pop()
        top = stack[-1]
        if top.end > common:  # the previous row's segment diverges inside: split it
            top = _split(top, common)
            stack[-1] = top
        if len(row) > common:
            leaf = Node(common, list(row[common:]), top)
            top.children.append(leaf)
            stack.append(leaf)
        for pick in merged[row]:  # deepest node holding the position
            node = next(n for n in reversed(stack) if n.start <= pick[0] < n.end)
            node.picks.append(pick)
        previous = row
    _fold(root, min_shared)
    return root


def under_context(root: Node, length: int, kv: Any) -> Node:
    """Put the tree of ``root`` after a context of ``length`` positions given as keys and values
    (``kv``: a learned prefix, as prefix tuning trains it), which every row then reads first.

    The root becomes that context's node (``length`` placeholder tokens that are never run, its
    cache ``kv``), and every segment and pick below it moves ``length`` positions on: a row's
    first token sits at position ``length``. Returns ``root``.
    """
    for node in iter_nodes(root):
        node.start += length
        node.picks = [(pos + length, token, i, c) for pos, token, i, c in node.picks]
    root.tokens = [-1] * length  # only their count matters: the root's cache is given
    root.kv = kv
    return root


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for k in range(n):
        if a[k] != b[k]:
            return k
    return n


def _split(node: Node, at: int) -> Node:
    """Cut ``node`` at absolute position ``at``; returns the new upper part (in its place)."""
    upper = Node(node.start, node.tokens[: at - node.start], node.parent)
    assert node.parent is not None
    siblings = node.parent.children
    siblings[siblings.index(node)] = upper
    upper.picks = [p for p in node.picks if p[0] < at]
    node.picks = [p for p in node.picks if p[0] >= at]
    node.tokens = node.tokens[at - node.start :]
    node.start = at
    node.parent = upper
    upper.children.append(node)
    return upper


def _fold(root: Node, min_shared: int) -> None:
    """Decide bottom-up which segments stay shared, rewriting the tree below ``root`` in place.

    A node with one child, or whose segment is shorter than ``min_shared``, is folded: its tokens
    are prepended to each child (and its picks go to the first child, which computes those
    positions anyway).
    """
    replacement: dict[int, list[Node]] = {}
    for node in reversed([root, *iter_nodes(root)]):  # children before parents
        children = [c for child in node.children for c in replacement.pop(id(child))]
        node.children = children
        for child in children:
            child.parent = node
        # With one child nothing is saved; with several, each would recompute the segment.
        if node is root or not children or (len(children) > 1 and len(node.tokens) >= min_shared):
            replacement[id(node)] = [node]
            continue
        for k, child in enumerate(children):
            child.tokens = node.tokens + child.tokens
            child.start = node.start
            child.parent = node.parent
            if k == 0:
                child.picks = node.picks + child.picks
        replacement[id(node)] = children


def iter_nodes(root: Node) -> list[Node]:
    """All nodes below ``root`` (root excluded), parents before children."""
    out: list[Node] = []
    todo = list(root.children)
    while todo:
        node = todo.pop()
        out.append(node)
        todo.extend(node.children)
    return out
