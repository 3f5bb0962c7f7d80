export interface Measurement {
  label: string;
  /** Operations per second. */
  perSecond: number;
}

export interface ScenarioResult {
  name: string;
  baseline: Measurement;
  subject: Measurement;
  /** subject ÷ baseline: 1.0 means as fast as the baseline. */
  ratio: number;
}

export const measure = async (label: string, operations: number, run: () => Promise<unknown>): Promise<Measurement> => {
  const started = performance.now();
  await run();
  const seconds = (performance.now() - started) / 1000;
  return { label, perSecond: operations / seconds };
};

export const compare = (name: string, baseline: Measurement, subject: Measurement): ScenarioResult => ({
  name,
  baseline,
  subject,
  ratio: subject.perSecond / baseline.perSecond,
});

export const formatResult = (r: ScenarioResult): string =>
  [
    `${r.name}`,
    `  baseline  ${r.baseline.label.padEnd(48)} ${Math.round(r.baseline.perSecond).toLocaleString('en')}/s`,
    `  subject   ${r.subject.label.padEnd(48)} ${Math.round(r.subject.perSecond).toLocaleString('en')}/s`,
    `  ratio     ${r.ratio.toFixed(2)}×`,
  ].join('\n');

/** A resident-memory figure against a same-run baseline, with the lines that explain it. */
export interface MemoryResult {
  name: string;
  baseline: { label: string; mib: number };
  subject: { label: string; mib: number };
  /** subject ÷ baseline: 1.0 means no more memory than the baseline. */
  ratio: number;
  notes: string[];
}

export const isMemoryResult = (r: ScenarioResult | MemoryResult): r is MemoryResult => 'mib' in r.baseline;

export const formatMemory = (r: MemoryResult): string =>
  [
    `${r.name}`,
    `  baseline  ${r.baseline.label.padEnd(48)} ${r.baseline.mib.toFixed(0)} MiB`,
    `  subject   ${r.subject.label.padEnd(48)} ${r.subject.mib.toFixed(0)} MiB`,
    `  ratio     ${r.ratio.toFixed(2)}× (+${(r.subject.mib - r.baseline.mib).toFixed(0)} MiB)`,
    ...r.notes.map((n) => `  ${n}`),
  ].join('\n');
