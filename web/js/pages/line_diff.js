// A line diff by longest common subsequence: [{op: ' '|'-'|'+', text, a, b}]
// with a/b the line numbers in the old and new text. Specs are small; past
// 4 million cells it falls back to "all removed, all added".

export function lineDiff(oldText, newText) {
  const a = oldText === '' ? [] : oldText.split('\n');
  const b = newText === '' ? [] : newText.split('\n');
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
  const rows = [];
  for (let i = 0; i < start; i++) rows.push({ op: ' ', text: a[i], a: i + 1, b: i + 1 });
  const n = endA - start;
  const m = endB - start;
  if (n * m > 4e6) {
    for (let i = start; i < endA; i++) rows.push({ op: '-', text: a[i], a: i + 1 });
    for (let j = start; j < endB; j++) rows.push({ op: '+', text: b[j], b: j + 1 });
  } else {
    // lcs[i][j]: the common length of a[start+i..] and b[start+j..].
    const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--)
      for (let j = m - 1; j >= 0; j--)
        lcs[i][j] = a[start + i] === b[start + j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[start + i] === b[start + j]) {
        rows.push({ op: ' ', text: a[start + i], a: start + i + 1, b: start + j + 1 });
        i++; j++;
      } else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) {
        rows.push({ op: '-', text: a[start + i], a: start + i + 1 });
        i++;
      } else {
        rows.push({ op: '+', text: b[start + j], b: start + j + 1 });
        j++;
      }
    }
  }
  for (let k = 0; k < a.length - endA; k++)
    rows.push({ op: ' ', text: a[endA + k], a: endA + k + 1, b: endB + k + 1 });
  return rows;
}
