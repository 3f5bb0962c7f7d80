import type { NotificationLocale } from './notification-templates';

/**
 * Messages to staff about an incident: pages (with the acknowledgement link), the owners' notice when nobody
 * acknowledged, deadline reminders and overdue notices. Pure: the activity passes what it read.
 */
export const INCIDENT_TEMPLATES = [
  'incident-page',
  'incident-unacknowledged',
  'deadline-reminder',
  'deadline-overdue',
] as const;
export type IncidentTemplate = (typeof INCIDENT_TEMPLATES)[number];

export interface IncidentMessageParams {
  incidentId: string;
  title: string;
  severity: string;
  status: string;
  /** Pages: where in the chain. */
  round?: number;
  cycle?: number;
  level?: number;
  /** The signed acknowledgement link of a page. */
  link?: string;
  /** Reminders and overdue notices: which deadline (a regulator's or the postmortem), due when, how far in. */
  deadline?: { kind: string; authority?: string; dueAt: string; percent?: number };
}

const lines = (...parts: (string | false | undefined)[]) =>
  parts.filter((p): p is string => typeof p === 'string').join('\n');

type Render = (p: IncidentMessageParams) => { subject: string; text: string };

const TEMPLATES: Record<IncidentTemplate, Record<NotificationLocale, Render>> = {
  'incident-page': {
    en: (p) => ({
      subject: `[${p.severity}] Incident: ${p.title}`,
      text: lines(
        `You are paged for incident ${p.incidentId} (${p.severity}, ${p.status}).`,
        `Escalation level ${p.level}, pass ${p.cycle}${p.round && p.round > 1 ? `, round ${p.round}` : ''}.`,
        '',
        p.title,
        '',
        p.link ? `Acknowledge: ${p.link}` : 'Acknowledge through the API.',
      ),
    }),
    'zh-CN': (p) => ({
      subject: `[${p.severity}] 事件：${p.title}`,
      text: lines(
        `您被呼叫处理事件 ${p.incidentId}（${p.severity}，${p.status}）。`,
        `升级级别 ${p.level}，第 ${p.cycle} 轮${p.round && p.round > 1 ? `，第 ${p.round} 次升级` : ''}。`,
        '',
        p.title,
        '',
        p.link ? `确认接手：${p.link}` : '请通过 API 确认接手。',
      ),
    }),
  },
  'incident-unacknowledged': {
    en: (p) => ({
      subject: `[${p.severity}] Nobody acknowledged incident: ${p.title}`,
      text: lines(
        `Incident ${p.incidentId} (${p.severity}) was paged through its whole escalation policy and nobody acknowledged it.`,
        '',
        p.title,
      ),
    }),
    'zh-CN': (p) => ({
      subject: `[${p.severity}] 事件无人确认：${p.title}`,
      text: lines(`事件 ${p.incidentId}（${p.severity}）已按升级策略全部呼叫，仍无人确认。`, '', p.title),
    }),
  },
  'deadline-reminder': {
    en: (p) => ({
      subject: `[${p.severity}] ${p.deadline?.percent}% of the ${p.deadline?.kind} window has passed: ${p.title}`,
      text: lines(
        `Incident ${p.incidentId}: ${p.deadline?.kind} is due ${p.deadline?.dueAt}${p.deadline?.authority ? ` (${p.deadline.authority})` : ''}.`,
        '',
        p.title,
      ),
    }),
    'zh-CN': (p) => ({
      subject: `[${p.severity}] ${p.deadline?.kind} 时限已过 ${p.deadline?.percent}%：${p.title}`,
      text: lines(
        `事件 ${p.incidentId}：${p.deadline?.kind} 截止于 ${p.deadline?.dueAt}${p.deadline?.authority ? `（${p.deadline.authority}）` : ''}。`,
        '',
        p.title,
      ),
    }),
  },
  'deadline-overdue': {
    en: (p) => ({
      subject: `[${p.severity}] OVERDUE ${p.deadline?.kind}: ${p.title}`,
      text: lines(
        `Incident ${p.incidentId}: ${p.deadline?.kind} was due ${p.deadline?.dueAt} and is not recorded as done.`,
        '',
        p.title,
      ),
    }),
    'zh-CN': (p) => ({
      subject: `[${p.severity}] 已逾期 ${p.deadline?.kind}：${p.title}`,
      text: lines(`事件 ${p.incidentId}：${p.deadline?.kind} 应于 ${p.deadline?.dueAt} 完成，尚无记录。`, '', p.title),
    }),
  },
};

export const renderIncidentMessage = (
  template: IncidentTemplate,
  locale: NotificationLocale,
  p: IncidentMessageParams,
) => TEMPLATES[template][locale](p);
