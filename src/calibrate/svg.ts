/**
 * The calibration chart (`imgtool calibrate --out DIR`): one panel per benchmark, one bar per layout showing its
 * slowdown against 1 worker alone, its CV written above it, and the config's `max_slowdown` as a dashed line.
 * People compare these by eye. Pure: a string of SVG, every text escaped for XML.
 */
import type { InstanceCalibration, Row } from "./calibrate.js";

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const COLOURS = { alone: "#4c78a8", pinned: "#59a14f", unpinned: "#e15759" } as const;

function colourOf(r: Row): string {
  if (r.workers === 1) return COLOURS.alone;
  return r.pinned ? COLOURS.pinned : COLOURS.unpinned;
}

const fmt = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : "-");

export function calibrationSvg(c: InstanceCalibration): string {
  const benchmarks = [...new Set(c.rows.map((r) => r.benchmark))];
  const layouts = c.layouts.map((l) => l.name).filter((n) => c.rows.some((r) => r.layout === n));
  const bar = 48;
  const gap = 16;
  const left = 56;
  const panelW = left + layouts.length * (bar + gap) + gap;
  const width = Math.max(420, panelW + 20);
  const plotH = 160;
  const panelH = plotH + 70;
  const top = 56;
  const height = top + benchmarks.length * panelH + 30;
  const maxY = Math.max(
    c.thresholds.maxSlowdown * 1.1,
    ...c.rows.map((r) => (Number.isFinite(r.slowdown) ? r.slowdown : 0)),
    1.2,
  );
  const y = (v: number) => plotH - (v / maxY) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<title>${escapeXml(`imgtool calibrate: ${c.instanceType}, ${c.version}`)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${escapeXml(`${c.instanceType} (${c.version})`)}</text>`,
    `<text x="10" y="38">${escapeXml(
      `slowdown against 1 worker alone; CV above each bar; recommended: ${c.recommendation.workers} worker(s) (max slowdown ${c.thresholds.maxSlowdown}, max CV ${c.thresholds.maxCv})`,
    )}</text>`,
  ];
  benchmarks.forEach((b, i) => {
    const oy = top + i * panelH;
    out.push(`<g transform="translate(0 ${oy})" class="benchmark">`);
    out.push(`<text x="10" y="12" font-weight="bold">${escapeXml(b)}</text>`);
    out.push(`<g transform="translate(0 24)">`);
    out.push(`<line x1="${left}" y1="0" x2="${left}" y2="${plotH}" stroke="#333"/>`);
    out.push(`<line x1="${left}" y1="${plotH}" x2="${panelW}" y2="${plotH}" stroke="#333"/>`);
    for (const tick of [0, 1, c.thresholds.maxSlowdown]) {
      out.push(
        `<text x="${left - 6}" y="${y(tick) + 4}" text-anchor="end">${fmt(tick, tick % 1 ? 2 : 0)}x</text>`,
      );
    }
    const ty = y(c.thresholds.maxSlowdown);
    out.push(
      `<line class="threshold" x1="${left}" y1="${ty}" x2="${panelW}" y2="${ty}" stroke="#999" stroke-dasharray="4 3"/>`,
    );
    layouts.forEach((name, j) => {
      const r = c.rows.find((x) => x.benchmark === b && x.layout === name);
      if (!r) return;
      const x = left + gap + j * (bar + gap);
      const v = Number.isFinite(r.slowdown) ? r.slowdown : 0;
      out.push(
        `<rect class="bar" data-layout="${escapeXml(name)}" x="${x}" y="${y(v)}" width="${bar}" height="${plotH - y(v)}" fill="${colourOf(r)}"><title>${escapeXml(
          `${b}, ${name}: median ${fmt(r.medianSeconds * 1000, 3)} ms, CV ${fmt(r.cv, 4)}, slowdown ${fmt(r.slowdown, 3)}x, ${r.samples} samples`,
        )}</title></rect>`,
      );
      out.push(
        `<text x="${x + bar / 2}" y="${y(v) - 4}" text-anchor="middle">${escapeXml(`CV ${fmt(r.cv * 100, 1)}%`)}</text>`,
      );
      out.push(`<text x="${x + bar / 2}" y="${plotH + 14}" text-anchor="middle">${escapeXml(name)}</text>`);
    });
    out.push("</g></g>");
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
