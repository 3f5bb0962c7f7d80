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
