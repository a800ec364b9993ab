// Plain-text tables for the CLI: every column as wide as its widest cell,
// so a long rule or path moves the columns instead of breaking them.

/** The table's lines; columns listed in `right` are right-aligned (numbers). The last column is not padded. */
export function table(rows: readonly (readonly string[])[], right: readonly number[] = []): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => { widths[i] = Math.max(widths[i] ?? 0, cell.length); });
  return rows.map((row) => row
    .map((cell, i) => {
      if (right.includes(i)) return cell.padStart(widths[i]);
      return i === row.length - 1 ? cell : cell.padEnd(widths[i]);
    })
    .join('  ')
    .trimEnd());
}
