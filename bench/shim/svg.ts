/**
 * The report's chart as a self-contained SVG (no libraries): one bar per ratio target on a log axis around "same as
 * Go" (1×), coloured by status with the goal marked; memory per container against the number of containers for the
 * Go shim and both of our modes (log axis, goal line); and the soak's growth against its limit.
 *
 * @example
 * ```ts
 * import { renderChart } from "./svg.ts";
 * import { evaluateTargets } from "./targets.ts";
 * const results = JSON.parse(await Deno.readTextFile("bench/results/shim.json"));
 * await Deno.writeTextFile("docs/benchmarks.svg", renderChart(evaluateTargets(results), results.memory ?? []));
 * ```
 * @module
 */
import type { MemoryMode, MemoryPoint } from "./results.ts";
import type { TargetRow, TargetStatus } from "./targets.ts";

const WIDTH = 1010;
const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"';
const STATUS_COLOR: Record<TargetStatus, string> = { met: "#2e9d3a", missed: "#d0342c", "not measured": "#9a9a9a" };
const MODE_STYLE: Record<MemoryMode, { color: string; label: string }> = {
  go: { color: "#3b6fb6", label: "Go shim" },
  pod: { color: "#e5861a", label: "ours, per pod (default)" },
  node: { color: "#7a4fb5", label: "ours, node mode" },
};

/** Escapes text for SVG content and attributes. */
export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function text(x: number, y: number, s: string, attrs = ""): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${FONT} ${attrs}>${esc(s)}</text>`;
}

function line(x1: number, y1: number, x2: number, y2: number, attrs: string): string {
  return `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" ${attrs}/>`;
}

/** Tick values 1, 2, 5 × 10^k within [lo, hi]. */
export function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  if (!(lo > 0) || !(hi >= lo) || !Number.isFinite(hi)) return out; // a log axis needs a positive, finite range
  for (let k = Math.floor(Math.log10(lo)) - 1; k <= Math.ceil(Math.log10(hi)); k++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** k;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(Number(v.toPrecision(3)));
    }
  }
  return out;
}

/** A log scale mapping [lo, hi] onto [a, b]. */
function logScale(lo: number, hi: number, a: number, b: number): (v: number) => number {
  const l0 = Math.log10(lo), l1 = Math.log10(hi);
  return (v) => a + (Math.log10(Math.min(Math.max(v, lo), hi)) - l0) / (l1 - l0) * (b - a);
}

/** Rounds `v` down (or up) to a 1/2/5 step, for axis ends. */
function niceBound(v: number, up: boolean): number {
  const ticks = logTicks(v / 10, v * 10);
  return up ? ticks.find((t) => t >= v) ?? v : [...ticks].reverse().find((t) => t <= v) ?? v;
}

function tickLabel(v: number): string {
  return v >= 1 ? `${v}` : v.toString().replace(/^0/, "");
}

/** Panel 1: ratio targets. Returns the SVG fragment and its height. */
function ratioPanel(rows: TargetRow[], top: number): { svg: string; height: number } {
  const ratios = rows.filter((r) => r.isRatio);
  // A goal that could not be stated (its floor was not measured) has no tick.
  const values = ratios.flatMap((r) => [r.value ?? NaN, r.limit]).filter((v) => Number.isFinite(v) && v > 0);
  const lo = niceBound(Math.min(0.5, ...values.map((v) => v / 1.3)), false);
  const hi = niceBound(Math.max(2, ...values.map((v) => v * 1.3)), true);
  const x0 = 300, x1 = 760, rowH = 30, head = 66;
  const x = logScale(lo, hi, x0, x1);
  const parts: string[] = [
    text(
      20,
      top + 20,
      "ours ÷ Go shim, per target (log scale; left of 1× = ours is lower)",
      'font-size="15" font-weight="bold"',
    ),
    text(
      20,
      top + 38,
      "bar: measured ratio of medians · black tick: the goal, its flag points to the good side · green met, red missed",
      'font-size="11.5" fill="#555"',
    ),
  ];
  const plotTop = top + head, plotBottom = plotTop + ratios.length * rowH;
  for (const t of logTicks(lo, hi)) {
    const strong = t === 1;
    parts.push(
      line(
        x(t),
        plotTop - 6,
        x(t),
        plotBottom,
        `stroke="${strong ? "#333" : "#ddd"}" stroke-width="${strong ? 1.5 : 1}"`,
      ),
    );
    parts.push(text(x(t), plotTop - 10, `${tickLabel(t)}×`, 'font-size="11" fill="#555" text-anchor="middle"'));
  }
  ratios.forEach((r, i) => {
    const cy = plotTop + i * rowH + rowH / 2;
    parts.push(text(x0 - 10, cy + 4, r.name, 'font-size="12.5" text-anchor="end"'));
    const color = STATUS_COLOR[r.status];
    if (r.value !== null) {
      const a = x(Math.min(1, r.value)), b = x(Math.max(1, r.value));
      parts.push(
        `<rect x="${a.toFixed(1)}" y="${(cy - 8).toFixed(1)}" width="${Math.max(2, b - a).toFixed(1)}" height="16" ` +
          `fill="${color}" rx="2"/>`,
      );
    }
    // The goal: a dark tick with a short arrow pointing to the good side.
    if (Number.isFinite(r.limit)) {
      const gx = x(r.limit);
      parts.push(line(gx, cy - 12, gx, cy + 12, 'stroke="#111" stroke-width="2"'));
      const dir = r.better === "lower" ? -1 : 1;
      parts.push(
        `<path d="M${gx.toFixed(1)},${(cy - 12).toFixed(1)} l${
          (6 * dir).toFixed(1)
        },0" stroke="#111" stroke-width="2"/>`,
      );
    }
    const mark = r.status === "met" ? "✔ met" : r.status === "missed" ? "✘ missed" : "not measured";
    parts.push(text(x1 + 12, cy + 4, `${r.shown}  goal ${r.goal}  ${mark}`, `font-size="12.5" fill="${color}"`));
  });
  return { svg: parts.join("\n"), height: head + ratios.length * rowH + 16 };
}

/** Panel 2: memory per container. */
function memoryPanel(
  memory: MemoryPoint[],
  pssRow: TargetRow | undefined,
  top: number,
): { svg: string; height: number } {
  const height = 330;
  const parts: string[] = [
    text(
      20,
      top + 20,
      "Memory per container (MiB, log scale): PSS solid, USS dashed",
      'font-size="15" font-weight="bold"',
    ),
  ];
  // Readings without any process (nothing found to measure) cannot go on a log axis.
  memory = memory.filter((m) => m.totals.processes > 0 && m.totals.ussKiB > 0);
  if (memory.length === 0) {
    parts.push(text(20, top + 50, "not measured in this run", 'font-size="12.5" fill="#777"'));
    return { svg: parts.join("\n"), height: 70 };
  }
  const steps = [...new Set(memory.map((m) => m.containers))].sort((a, b) => a - b);
  const per = (kib: number, n: number) => kib / n / 1024;
  const values = memory.flatMap((m) => [per(m.totals.pssKiB, m.containers), per(m.totals.ussKiB, m.containers)]);
  const lo = niceBound(Math.min(0.2, ...values.map((v) => v / 1.3)), false);
  const hi = niceBound(Math.max(...values.map((v) => v * 1.3)), true);
  const x0 = 90, x1 = 640, y0 = top + height - 40, y1 = top + 44;
  const y = logScale(lo, hi, y0, y1);
  const x = (n: number) => steps.length === 1 ? (x0 + x1) / 2 : x0 + steps.indexOf(n) / (steps.length - 1) * (x1 - x0);
  for (const t of logTicks(lo, hi)) {
    parts.push(line(x0, y(t), x1, y(t), 'stroke="#e3e3e3"'));
    parts.push(text(x0 - 8, y(t) + 4, tickLabel(t), 'font-size="11" fill="#555" text-anchor="end"'));
  }
  for (const n of steps) {
    parts.push(line(x(n), y0, x(n), y0 + 5, 'stroke="#555"'));
    parts.push(text(x(n), y0 + 19, `${n}`, 'font-size="11.5" fill="#333" text-anchor="middle"'));
  }
  parts.push(text((x0 + x1) / 2, y0 + 35, "running containers", 'font-size="12" fill="#333" text-anchor="middle"'));
  // The absolute goal: node mode, 50 containers, PSS per container at most the target row's limit.
  if (pssRow) {
    parts.push(
      line(x0, y(pssRow.limit), x1, y(pssRow.limit), 'stroke="#d0342c" stroke-dasharray="6 4" stroke-width="1.5"'),
    );
    parts.push(
      text(
        x0 + 4,
        y(pssRow.limit) - 5,
        `goal: node mode PSS ≤ ${pssRow.limit} MiB at 50`,
        'font-size="11" fill="#d0342c"',
      ),
    );
  }
  const modes = (["go", "pod", "node"] as const).filter((m) => memory.some((p) => p.mode === m));
  for (const m of modes) {
    const pts = memory.filter((p) => p.mode === m).sort((a, b) => a.containers - b.containers);
    const { color } = MODE_STYLE[m];
    for (const [field, dash] of [["pssKiB", ""], ["ussKiB", 'stroke-dasharray="5 4"']] as const) {
      const d = pts.map((p, i) =>
        `${i ? "L" : "M"}${x(p.containers).toFixed(1)},${y(per(p.totals[field], p.containers)).toFixed(1)}`
      );
      parts.push(`<path d="${d.join(" ")}" fill="none" stroke="${color}" stroke-width="2.2" ${dash}/>`);
    }
    for (const p of pts) {
      const v = per(p.totals.pssKiB, p.containers);
      parts.push(`<circle cx="${x(p.containers).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3.5" fill="${color}"/>`);
    }
  }
  const last = steps.at(-1)!;
  parts.push(text(670, top + 50, `at ${last} containers, PSS / USS per container:`, 'font-size="12" fill="#333"'));
  modes.forEach((m, i) => {
    const ly = top + 72 + i * 22;
    const p = memory.find((q) => q.mode === m && q.containers === last);
    const values = p ? `${per(p.totals.pssKiB, last).toFixed(2)} / ${per(p.totals.ussKiB, last).toFixed(2)} MiB` : "—";
    parts.push(line(670, ly, 700, ly, `stroke="${MODE_STYLE[m].color}" stroke-width="3"`));
    parts.push(text(708, ly + 4, `${MODE_STYLE[m].label}: ${values}`, 'font-size="12.5"'));
  });
  if (pssRow) {
    parts.push(
      text(
        670,
        top + 72 + modes.length * 22 + 14,
        `node mode @50: ${pssRow.shown} PSS`,
        `font-size="12.5" fill="${STATUS_COLOR[pssRow.status]}"`,
      ),
    );
    parts.push(
      text(
        670,
        top + 72 + modes.length * 22 + 32,
        pssRow.status === "met" ? "✔ goal met" : pssRow.status === "missed" ? "✘ goal missed" : "not measured",
        `font-size="12.5" fill="${STATUS_COLOR[pssRow.status]}"`,
      ),
    );
  }
  return { svg: parts.join("\n"), height };
}

/** Panel 3: the soak's growth as a bar against its limit. */
function soakPanel(row: TargetRow | undefined, top: number): { svg: string; height: number } {
  if (!row) return { svg: "", height: 0 };
  const parts = [
    text(20, top + 20, "Memory growth of our server over the exec soak", 'font-size="15" font-weight="bold"'),
  ];
  const x0 = 300, x1 = 760, cy = top + 46;
  const max = Math.max(row.limit * 2, (row.value ?? 0) * 1.2);
  const x = (v: number) => x0 + Math.max(0, Math.min(v, max)) / max * (x1 - x0);
  parts.push(text(x0 - 10, cy + 4, row.name, 'font-size="12.5" text-anchor="end"'));
  parts.push(line(x0, cy + 12, x1, cy + 12, 'stroke="#bbb"'));
  if (row.value !== null) {
    parts.push(
      `<rect x="${x0}" y="${cy - 8}" width="${Math.max(2, x(row.value) - x0).toFixed(1)}" height="16" fill="${
        STATUS_COLOR[row.status]
      }" rx="2"/>`,
    );
  }
  parts.push(line(x(row.limit), cy - 12, x(row.limit), cy + 12, 'stroke="#111" stroke-width="2"'));
  parts.push(text(x(row.limit), cy + 26, `${row.limit} MiB`, 'font-size="11" text-anchor="middle" fill="#333"'));
  const mark = row.status === "met" ? "✔ met" : row.status === "missed" ? "✘ missed" : "not measured";
  parts.push(
    text(
      x1 + 12,
      cy + 4,
      `${row.shown}  goal ${row.goal}  ${mark}`,
      `font-size="12.5" fill="${STATUS_COLOR[row.status]}"`,
    ),
  );
  return { svg: parts.join("\n"), height: 80 };
}

/** The whole chart. */
export function renderChart(rows: TargetRow[], memory: MemoryPoint[], subtitle = ""): string {
  let top = subtitle ? 36 : 8;
  const head = subtitle ? text(20, 24, subtitle, 'font-size="12" fill="#555"') : "";
  const p1 = ratioPanel(rows, top);
  top += p1.height + 10;
  const p2 = memoryPanel(memory, rows.find((r) => r.key === "pss-node-50"), top);
  top += p2.height + 10;
  const p3 = soakPanel(rows.find((r) => r.key === "soak"), top);
  top += p3.height;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${top}" viewBox="0 0 ${WIDTH} ${top}">
<rect width="100%" height="100%" fill="#fff"/>
${head}
${p1.svg}
${p2.svg}
${p3.svg}
</svg>
`;
}
