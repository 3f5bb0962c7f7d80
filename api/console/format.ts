import type { ConsoleLanguage } from './text';

/** Dates in the reader's language: China time in Chinese, UTC in English (with the zone named). */
export const formatDate = (lang: ConsoleLanguage) => {
  const f = new Intl.DateTimeFormat(lang, {
    dateStyle: 'medium',
    timeStyle: 'long',
    timeZone: lang === 'zh-CN' ? 'Asia/Shanghai' : 'UTC',
  });
  return (d: Date | string | null | undefined) => (d ? f.format(new Date(d)) : '');
};

/** A duration as days/hours/minutes/seconds, the two largest units; negative as "-". */
export const formatDuration = (ms: number): string => {
  const sign = ms < 0 ? '-' : '';
  let s = Math.floor(Math.abs(ms) / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(s / size);
    s -= n * size;
    if (n > 0 || (unit === 's' && parts.length === 0)) parts.push(`${n}${unit}`);
  }
  return sign + parts.slice(0, 2).join(' ');
};

export const formatBytes = (n: number | null | undefined): string => {
  if (n === null || n === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  for (; v >= 1024 && i < units.length - 1; i++) v /= 1024;
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
};
