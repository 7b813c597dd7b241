"""Minimal SVG charts with the standard library only (matplotlib is not available).

line_chart: series of (x, y) points, optional log axes, legend, dashed series.
bar_chart:  horizontal grouped bars (one group per label, one bar per series),
            optional log scale, value labels.
Both return the SVG document as a string; the output renders in browsers and on
GitHub.
"""
import math
from xml.sax.saxutils import escape

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]
FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'


def _nice_linear_ticks(lo, hi, count=6):
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    return ticks


def _log_ticks(lo, hi, base):
    lo_e = math.floor(math.log(lo, base) + 1e-9)
    hi_e = math.ceil(math.log(hi, base) - 1e-9)
    return [base ** e for e in range(lo_e, hi_e + 1)]


def fmt_num(v):
    """Compact human number: 1.2k, 35M, 0.25."""
    a = abs(v)
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            s = f"{v / div:.3g}"
            return s + suf
    if a == 0:
        return "0"
    if a >= 1:
        return f"{v:.3g}"
    return f"{v:.2g}"


class _Axis:
    def __init__(self, lo, hi, log, base, pix_lo, pix_hi):
        self.log, self.base = log, base
        if log:
            lo, hi = max(lo, 1e-300), max(hi, 1e-300)
            self.ticks = _log_ticks(lo, hi, base)
            self.lo, self.hi = self.ticks[0], self.ticks[-1]
            if self.lo == self.hi:
                self.hi = self.lo * base
        else:
            self.ticks = _nice_linear_ticks(lo, hi)
            self.lo, self.hi = self.ticks[0], self.ticks[-1]
        self.pix_lo, self.pix_hi = pix_lo, pix_hi

    def __call__(self, v):
        if self.log:
            v = max(v, 1e-300)
            f = (math.log(v) - math.log(self.lo)) / (math.log(self.hi) - math.log(self.lo))
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        return self.pix_lo + f * (self.pix_hi - self.pix_lo)


def line_chart(title, series, x_label, y_label, *, log_x=False, log_x_base=2, log_y=False, width=760,
               height=440, subtitle=None, y_min=None):
    """series: list of dicts {name, points: [(x, y)], style: solid|dashed|dotted, color: optional}.

    Solid and dotted series get point markers; dashed ones (reference lines) do not."""
    pts = [p for s in series for p in s["points"] if p[1] is not None]
    if not pts:
        return _empty(title, width, height)
    left, right, top, bottom = 80, 210, 56 if subtitle else 40, 56
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    ax = _Axis(min(xs), max(xs), log_x, log_x_base, left, width - right)
    lo_y = min(ys) if y_min is None else y_min
    if not log_y and y_min is None:
        lo_y = min(0, lo_y)
    ay = _Axis(lo_y, max(ys), log_y, 10, height - bottom, top)
    out = [_header(width, height), _title(title, subtitle, width)]
    # grid and ticks
    for t in ay.ticks:
        y = ay(t)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" {FONT}>'
                   f'{fmt_num(t)}</text>')
    xticks = sorted(set(xs)) if log_x else ax.ticks
    for t in xticks:
        x = ax(t)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}" stroke="#f0f0f0"/>')
        out.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11" {FONT}>'
                   f'{fmt_num(t)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
               f'fill="none" stroke="#888"/>')
    out.append(f'<text x="{(left + width - right) / 2:.1f}" y="{height - 14}" text-anchor="middle" '
               f'font-size="12" {FONT}>{escape(x_label)}</text>')
    out.append(f'<text transform="translate(18,{(top + height - bottom) / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle" font-size="12" {FONT}>{escape(y_label)}</text>')
    # series
    for i, s in enumerate(series):
        color = s.get("color") or PALETTE[i % len(PALETTE)]
        points = sorted((p for p in s["points"] if p[1] is not None), key=lambda p: p[0])
        if not points:
            continue
        style = s.get("style") or ("dashed" if s.get("dashed") else "solid")
        dash = {"solid": "", "dashed": ' stroke-dasharray="7,4"', "dotted": ' stroke-dasharray="2,3"'}[style]
        path = " ".join(f"{ax(x):.1f},{ay(y):.1f}" for x, y in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        if style != "dashed":
            for x, y in points:
                out.append(f'<circle cx="{ax(x):.1f}" cy="{ay(y):.1f}" r="3" fill="{color}"/>')
        ly = top + 14 + i * 18
        lx = width - right + 12
        out.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 22}" y2="{ly - 4}" stroke="{color}" '
                   f'stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 28}" y="{ly}" font-size="11" {FONT}>{escape(s["name"])}</text>')
    out.append("</svg>\n")
    return "\n".join(out)


def bar_chart(title, labels, series, value_label, *, log=True, subtitle=None, width=760, bar_h=12,
              value_fmt=None):
    """labels: group names (rows); series: list of {name, values: [v or None per label]}."""
    value_fmt = value_fmt or fmt_num
    vals = [v for s in series for v in s["values"] if v]
    if not vals:
        return _empty(title, width, 200)
    left, right, top = 230, 120, 56 if subtitle else 40
    group_h = bar_h * len(series) + 10
    height = top + group_h * len(labels) + 70
    lo = min(vals) / 2 if log else 0
    ax = _Axis(lo, max(vals) * 1.05, log, 10, left, width - right)
    out = [_header(width, height), _title(title, subtitle, width)]
    bottom = top + group_h * len(labels)
    for t in ax.ticks:
        x = ax(t)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" font-size="11" {FONT}>'
                   f'{fmt_num(t)}</text>')
    out.append(f'<text x="{(left + width - right) / 2:.1f}" y="{bottom + 36}" text-anchor="middle" '
               f'font-size="12" {FONT}>{escape(value_label)}</text>')
    for gi, label in enumerate(labels):
        gy = top + gi * group_h + 5
        out.append(f'<text x="{left - 8}" y="{gy + group_h / 2 + 1:.1f}" text-anchor="end" font-size="11" '
                   f'{FONT}>{escape(label)}</text>')
        for si, s in enumerate(series):
            v = s["values"][gi]
            if not v:
                continue
            color = s.get("color") or PALETTE[si % len(PALETTE)]
            y = gy + si * bar_h
            x0 = ax(ax.lo)
            x1 = ax(v)
            out.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(1.0, x1 - x0):.1f}" height="{bar_h - 2}" '
                       f'fill="{color}"/>')
            out.append(f'<text x="{x1 + 4:.1f}" y="{y + bar_h - 3:.1f}" font-size="10" {FONT}>'
                       f'{escape(value_fmt(v))}</text>')
    for si, s in enumerate(series):
        color = s.get("color") or PALETTE[si % len(PALETTE)]
        lx = left + si * 150
        out.append(f'<rect x="{lx}" y="{height - 22}" width="12" height="10" fill="{color}"/>')
        out.append(f'<text x="{lx + 16}" y="{height - 13}" font-size="11" {FONT}>{escape(s["name"])}</text>')
    out.append("</svg>\n")
    return "\n".join(out)


def _header(width, height):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">\n<rect width="100%" height="100%" fill="white"/>')


def _title(title, subtitle, width):
    s = (f'<text x="{width / 2:.0f}" y="22" text-anchor="middle" font-size="15" font-weight="bold" {FONT}>'
         f'{escape(title)}</text>')
    if subtitle:
        s += (f'\n<text x="{width / 2:.0f}" y="40" text-anchor="middle" font-size="11" fill="#555" {FONT}>'
              f'{escape(subtitle)}</text>')
    return s


def _empty(title, width, height):
    return (_header(width, height) + _title(title, None, width) +
            f'\n<text x="{width / 2}" y="{height / 2}" text-anchor="middle" {FONT}>no data</text>\n</svg>\n')
