#!/usr/bin/env python3
"""Render a terminal capture with ANSI colours (`tmux capture-pane -e -p`) as an SVG that
looks like a terminal screenshot. Standard library only; used by scripts/screenshot.

    python3 scripts/ansi_to_svg.py --cols 120 --rows 36 --title saescope < capture.txt > out.svg

Every cell sits at x = col * CELL_W, y = row * CELL_H, whatever font the viewer has:
text runs give each glyph its own x; box-drawing lines, block elements (bars,
sparklines) and braille dots (line charts) are drawn as shapes, so they join and line up
exactly instead of depending on the font's glyphs. SGR handled: reset, bold, dim,
italic, underline, reverse, strike-through, the 16 colours, 256 colours and 24-bit colour
(foreground and background).
"""

import argparse
import sys
import unicodedata
from xml.sax.saxutils import escape

FONT_SIZE = 14
CELL_W = 8.4  # 0.6 em: the advance of DejaVu Sans Mono, Menlo, Consolas
CELL_H = 18
PAD = 14  # around the screen
BAR = 28  # the window's title bar
LIGHT, HEAVY = 1.2, 2.4  # box-drawing stroke widths

BG = "#0d1117"
FG = "#c9d1d9"
# GitHub's dark terminal palette: black, red, green, yellow, blue, magenta, cyan, white,
# then their bright forms.
PALETTE16 = [
    "#484f58", "#ff7b72", "#3fb950", "#d29922", "#58a6ff", "#bc8cff", "#39c5cf", "#b1bac4",
    "#6e7681", "#ffa198", "#56d364", "#e3b341", "#79c0ff", "#d2a8ff", "#56d4dd", "#ffffff",
]


def xterm256(n):
    if n < 16:
        return PALETTE16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        r, g, b = steps[n // 36], steps[(n // 6) % 6], steps[n % 6]
        return f"#{r:02x}{g:02x}{b:02x}"
    v = 8 + 10 * (n - 232)
    return f"#{v:02x}{v:02x}{v:02x}"


class Style:
    __slots__ = ("fg", "bg", "bold", "dim", "italic", "underline", "reverse", "strike")

    def __init__(self):
        self.fg = None  # None: the default colour
        self.bg = None
        self.bold = self.dim = self.italic = self.underline = self.reverse = self.strike = False

    def copy(self):
        s = Style()
        for k in Style.__slots__:
            setattr(s, k, getattr(self, k))
        return s

    def colours(self):
        """(foreground, background) as drawn, reverse video applied."""
        fg, bg = self.fg or FG, self.bg or BG
        return (bg, fg) if self.reverse else (fg, bg)

    def key(self):
        return tuple(getattr(self, k) for k in Style.__slots__)


# SGR codes that set or clear text attributes: code -> (attribute, value) pairs.
FLAGS = {
    1: [("bold", True)],
    2: [("dim", True)],
    3: [("italic", True)],
    4: [("underline", True)],
    7: [("reverse", True)],
    9: [("strike", True)],
    22: [("bold", False), ("dim", False)],
    23: [("italic", False)],
    24: [("underline", False)],
    27: [("reverse", False)],
    29: [("strike", False)],
}


def apply_sgr(style, params):
    ps = [int(p) if p.isdigit() else 0 for p in params.replace(":", ";").split(";")] if params else [0]
    i = 0
    while i < len(ps):
        p = ps[i]
        if p == 0:
            style = Style()
        elif p in FLAGS:
            for attr, value in FLAGS[p]:
                setattr(style, attr, value)
        elif 30 <= p <= 37:
            style.fg = PALETTE16[p - 30]
        elif 40 <= p <= 47:
            style.bg = PALETTE16[p - 40]
        elif 90 <= p <= 97:
            style.fg = PALETTE16[p - 90 + 8]
        elif 100 <= p <= 107:
            style.bg = PALETTE16[p - 100 + 8]
        elif p == 39:
            style.fg = None
        elif p == 49:
            style.bg = None
        elif p in (38, 48) and i + 1 < len(ps):
            colour = None
            if ps[i + 1] == 5 and i + 2 < len(ps):
                colour = xterm256(ps[i + 2] & 255)
                i += 2
            elif ps[i + 1] == 2 and i + 4 < len(ps):
                r, g, b = (min(v, 255) for v in ps[i + 2:i + 5])
                colour = f"#{r:02x}{g:02x}{b:02x}"
                i += 4
            if p == 38:
                style.fg = colour
            else:
                style.bg = colour
        i += 1
    return style


def parse(text, cols, rows):
    """The screen as rows of cells (char, style); a wide character's second cell is None."""
    grid = [[(" ", Style()) for _ in range(cols)] for _ in range(rows)]
    for r, line in enumerate(text.split("\n")[:rows]):
        style, c, i = Style(), 0, 0
        while i < len(line):
            ch = line[i]
            if ch == "\x1b":
                if i + 1 < len(line) and line[i + 1] == "[":
                    j = i + 2
                    while j < len(line) and not (0x40 <= ord(line[j]) <= 0x7E):
                        j += 1
                    if j < len(line) and line[j] == "m":
                        style = apply_sgr(style.copy(), line[i + 2:j])
                    i = j + 1
                elif i + 1 < len(line) and line[i + 1] == "]":  # OSC, e.g. a hyperlink
                    j = i + 2
                    while j < len(line) and line[j] != "\x07" and line[j:j + 2] != "\x1b\\":
                        j += 1
                    i = j + (1 if j < len(line) and line[j] == "\x07" else 2)
                else:
                    i += 2
                continue
            i += 1
            if ch == "\r" or unicodedata.category(ch) in ("Cc", "Cf", "Mn"):
                continue
            wide = unicodedata.east_asian_width(ch) in ("W", "F")
            if c < cols:
                grid[r][c] = (ch, style)
                if wide and c + 1 < cols:
                    grid[r][c + 1] = (None, style)
            c += 2 if wide else 1
    return grid


# Box drawing: which of up/down/left/right a character draws, and how heavy, read from its
# Unicode name ("BOX DRAWINGS HEAVY DOWN AND RIGHT", "... DOWN LIGHT AND RIGHT HEAVY").
WEIGHTS = {"LIGHT": 1, "SINGLE": 1, "HEAVY": 2, "DOUBLE": 3}
DIRS = {"UP": ("u",), "DOWN": ("d",), "LEFT": ("l",), "RIGHT": ("r",), "HORIZONTAL": ("l", "r"), "VERTICAL": ("u", "d")}


def box_segments(ch):
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return None
    if not name.startswith("BOX DRAWINGS ") or any(w in name for w in ("DASH", "DIAGONAL")):
        return None
    words = name[len("BOX DRAWINGS "):].split()
    arc = "ARC" in words
    seg, pending, prefix, prev = {}, [], None, None
    for w in words:
        if w in WEIGHTS:
            if prev in DIRS:  # "DOWN LIGHT": the weight of the directions before it
                for d in pending:
                    seg[d] = WEIGHTS[w]
                pending = []
            else:  # "LIGHT DOWN": the weight of the directions after it
                prefix = WEIGHTS[w]
        elif w in DIRS:
            for d in DIRS[w]:
                if prefix is not None:
                    seg[d] = prefix
                else:
                    pending.append(d)
        prev = w
    for d in pending:
        seg[d] = 1
    return (seg, arc) if seg else None


def f(v):
    return f"{v:.2f}".rstrip("0").rstrip(".")


def box_shapes(ch, x, y, colour, lines):
    """Adds the character's straight segments to `lines` (merged and drawn at the end, so
    a border is one line, not a row of pieces whose antialiased ends overlap); returns the
    shapes drawn now (arcs, double lines), or None when the character is not box drawing."""
    found = box_segments(ch)
    if not found:
        return None
    seg, arc = found
    cx, cy = x + CELL_W / 2, y + CELL_H / 2
    ends = {"u": (cx, y), "d": (cx, y + CELL_H), "l": (x, cy), "r": (x + CELL_W, cy)}
    out = []
    if arc and len(seg) == 2:
        (a, _), (b, _) = sorted(seg.items(), key=lambda kv: "udlr".index(kv[0]))
        (ax, ay), (bx, by) = ends[a], ends[b]
        out.append(f'<path d="M{f(ax)},{f(ay)} Q{f(cx)},{f(cy)} {f(bx)},{f(by)}" fill="none" stroke="{colour}" stroke-width="{LIGHT}"/>')
        return out
    for d, w in seg.items():
        ex, ey = ends[d]
        offsets = (-1.6, 1.6) if w == 3 else (0,)
        width = {1: LIGHT, 2: HEAVY, 3: 1.0}[w]
        for o in offsets:
            if d in "ud":
                lines.append(("v", round(cx + o, 2), width, colour, min(cy, ey), max(cy, ey)))
            else:
                lines.append(("h", round(cy + o, 2), width, colour, min(cx, ex), max(cx, ex)))
    return out


def merged_lines(lines):
    """Touching segments on one line, of one width and colour, as one <line>."""
    groups = {}
    for kind, at, width, colour, a, b in lines:
        groups.setdefault((kind, at, width, colour), []).append((a, b))
    out = []
    for (kind, at, width, colour), spans in groups.items():
        spans.sort()
        merged = [list(spans[0])]
        for a, b in spans[1:]:
            if a <= merged[-1][1] + 0.01:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        for a, b in merged:
            # Square caps reach half a width past each end, so corners close.
            if kind == "h":
                xy = f'x1="{f(a)}" y1="{f(at)}" x2="{f(b)}" y2="{f(at)}"'
            else:
                xy = f'x1="{f(at)}" y1="{f(a)}" x2="{f(at)}" y2="{f(b)}"'
            out.append(f'<line {xy} stroke="{colour}" stroke-width="{width}" stroke-linecap="square"/>')
    return out


def rect(x, y, w, h, colour, extra=""):
    # crispEdges: neighbouring cells' rectangles meet without an antialiased seam.
    return f'<rect x="{f(x)}" y="{f(y)}" width="{f(w)}" height="{f(h)}" fill="{colour}" shape-rendering="crispEdges"{extra}/>'


def block_shapes(ch, x, y, colour):
    o = ord(ch)
    W, H = CELL_W, CELL_H
    if o == 0x2580:
        return [rect(x, y, W, H / 2, colour)]
    if 0x2581 <= o <= 0x2588:  # lower eighths
        h = H * (o - 0x2580) / 8
        return [rect(x, y + H - h, W, h, colour)]
    if 0x2589 <= o <= 0x258F:  # left eighths, seven down to one
        w = W * (0x2590 - o) / 8
        return [rect(x, y, w, H, colour)]
    if o == 0x2590:
        return [rect(x + W / 2, y, W / 2, H, colour)]
    if 0x2591 <= o <= 0x2593:
        return [rect(x, y, W, H, colour, f' fill-opacity="{(o - 0x2590) * 0.25}"')]
    if o == 0x2594:
        return [rect(x, y, W, H / 8, colour)]
    if o == 0x2595:
        return [rect(x + W * 7 / 8, y, W / 8, H, colour)]
    quads = {0x2596: "3", 0x2597: "4", 0x2598: "1", 0x2599: "134", 0x259A: "14", 0x259B: "123", 0x259C: "124", 0x259D: "2", 0x259E: "23", 0x259F: "234"}
    if o in quads:
        at = {"1": (0, 0), "2": (1, 0), "3": (0, 1), "4": (1, 1)}
        return [rect(x + at[q][0] * W / 2, y + at[q][1] * H / 2, W / 2, H / 2, colour) for q in quads[o]]
    return None


# Braille: bit -> (column, row) of its dot.
BRAILLE = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3)]


def braille_shapes(ch, x, y, colour):
    o = ord(ch)
    if not 0x2800 <= o <= 0x28FF:
        return None
    out = []
    for bit, (c, r) in enumerate(BRAILLE):
        if (o - 0x2800) >> bit & 1:
            cx, cy = x + CELL_W * (0.3 + 0.4 * c), y + CELL_H * (0.125 + 0.25 * r)
            out.append(f'<circle cx="{f(cx)}" cy="{f(cy)}" r="1.15" fill="{colour}"/>')
    return out


def render(grid, cols, rows, title):
    width = cols * CELL_W + 2 * PAD
    height = rows * CELL_H + 2 * PAD + BAR
    ox, oy = PAD, PAD + BAR
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{f(width)}" height="{f(height)}" viewBox="0 0 {f(width)} {f(height)}">',
        "<style>text{font-family:ui-monospace,'DejaVu Sans Mono','SFMono-Regular',Menlo,Consolas,'Liberation Mono',monospace;"
        f"font-size:{FONT_SIZE}px;white-space:pre}}.b{{font-weight:bold}}.i{{font-style:italic}}</style>",
        f'<rect width="{f(width)}" height="{f(height)}" rx="8" fill="{BG}"/>',
        f'<path d="M0,{BAR} V8 A8,8 0 0 1 8,0 H{f(width - 8)} A8,8 0 0 1 {f(width)},8 V{BAR} Z" fill="#161b22"/>',
    ]
    for i, c in enumerate(("#ff5f57", "#febc2e", "#28c840")):
        out.append(f'<circle cx="{18 + 20 * i}" cy="{BAR / 2}" r="6" fill="{c}"/>')
    out.append(f'<text x="{f(width / 2)}" y="{f(BAR / 2 + 5)}" fill="#8b949e" text-anchor="middle">{escape(title)}</text>')

    backgrounds, shapes, texts, lines = [], [], [], []
    for r, row in enumerate(grid):
        y = oy + r * CELL_H
        # Backgrounds: runs of one colour.
        c = 0
        while c < cols:
            bg = row[c][1].colours()[1]
            start = c
            while c < cols and row[c][1].colours()[1] == bg:
                c += 1
            if bg != BG:
                backgrounds.append(rect(ox + start * CELL_W, y, (c - start) * CELL_W, CELL_H, bg))
        # Foreground: shapes cell by cell, text in runs of one style.
        run, run_style, run_xs = "", None, []

        def flush():
            if run.strip():
                s = run_style
                fg = s.colours()[0]
                cls = " ".join(n for n, on in (("b", s.bold), ("i", s.italic)) if on)
                attrs = f' class="{cls}"' if cls else ""
                if s.dim:
                    attrs += ' fill-opacity="0.6"'
                xs = " ".join(f(v) for v in run_xs)
                texts.append(f'<text x="{xs}" y="{f(y + CELL_H * 0.73)}" fill="{fg}"{attrs}>{escape(run)}</text>')

        for c, (ch, style) in enumerate(row):
            if ch is None:
                continue
            x = ox + c * CELL_W
            fg = style.colours()[0]
            if style.underline and ch != " ":
                shapes.append(rect(x, y + CELL_H - 2.5, CELL_W * (2 if c + 1 < cols and row[c + 1][0] is None else 1), 1, fg))
            if style.strike:
                shapes.append(rect(x, y + CELL_H / 2, CELL_W, 1, fg))
            drawn = box_shapes(ch, x, y, fg, lines)
            if drawn is None:
                drawn = block_shapes(ch, x, y, fg) or braille_shapes(ch, x, y, fg)
            if drawn is not None or ch == " ":
                if drawn:
                    shapes.extend(drawn)
                if run:
                    flush()
                run, run_xs = "", []
                continue
            if run and style.key() != run_style.key():
                flush()
                run, run_xs = "", []
            if not run:
                run_style = style
            run += ch
            run_xs.append(x)
        flush()
    out += backgrounds + shapes + merged_lines(lines) + texts
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cols", type=int, required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    text = sys.stdin.read()
    sys.stdout.write(render(parse(text, a.cols, a.rows), a.cols, a.rows, a.title))


if __name__ == "__main__":
    main()
