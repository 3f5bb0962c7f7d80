import type { Child } from 'hono/jsx';

/** One column of a console list: its heading and what a row shows in it. */
export interface Column<R> {
  /** The column's heading (`th scope="col"`); none: an empty header cell, as over a row's buttons. */
  head?: Child;
  cell: (row: R, index: number) => Child;
  /** The cell's class (styles and tests select on it). */
  class?: string;
  /** The cell names its row (`th scope="row"`). */
  rowHeader?: boolean;
}

export interface DataTableProps<R> {
  rows: readonly R[];
  /** Columns left out where a role may not use them (`false`). */
  columns: readonly (Column<R> | false)[];
  id?: string | undefined;
  /** Every row's class (tests select rows by it). */
  rowClass?: string;
  rowId?: (row: R) => string;
  /** Shown as a paragraph instead of the table when there are no rows; without it an empty table is shown. */
  empty?: Child;
}

/** A console list: one table markup for every page, so headings, scopes and row classes read alike. */
export const DataTable = <R,>({ rows, columns, id, rowClass, rowId, empty }: DataTableProps<R>) => {
  if (rows.length === 0 && empty !== undefined) return <p>{empty}</p>;
  const shown = columns.filter((c): c is Column<R> => c !== false);
  return (
    <table id={id}>
      <thead>
        <tr>{shown.map((c) => (c.head === undefined ? <td /> : <th scope="col">{c.head}</th>))}</tr>
      </thead>
      <tbody>
        {rows.map((row, i) => (
          <tr class={rowClass} id={rowId?.(row)}>
            {shown.map((c) =>
              c.rowHeader ? (
                <th scope="row" class={c.class}>
                  {c.cell(row, i)}
                </th>
              ) : (
                <td class={c.class}>{c.cell(row, i)}</td>
              ),
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
};
