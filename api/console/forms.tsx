import type { Child, FC } from 'hono/jsx';
import { Csrf, type View } from './layout';

/** A console form that POSTs: the session's CSRF token, its fields, and its one submit button below them. */
export const PostForm: FC<{ v: View; action: string; submit: Child; primary?: boolean; children?: Child }> = ({
  v,
  action,
  submit,
  primary,
  children,
}) => (
  <form method="post" action={action}>
    <Csrf v={v} />
    {children}
    <p>
      <button class={primary ? 'primary' : undefined} type="submit">
        {submit}
      </button>
    </p>
  </form>
);
