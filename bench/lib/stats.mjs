// Summaries of timing samples: median and p99 (nearest rank), in milliseconds.

/** Nearest-rank percentile of `xs` (0 < p ≤ 100). */
export function percentile(xs, p) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length, Math.max(1, rank)) - 1];
}

/** {n, median, p99, mean, min, max} of a sample, rounded to µs. Timers in a non-isolated
 * page are coarsened to 0.1 ms, so the mean (unbiased over many samples) is reported too. */
export function summary(xs) {
  const r = (x) => (x == null ? null : Math.round(x * 1000) / 1000);
  return {
    n: xs.length,
    median: r(percentile(xs, 50)),
    p99: r(percentile(xs, 99)),
    mean: r(xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null),
    min: r(xs.length ? Math.min(...xs) : null),
    max: r(xs.length ? Math.max(...xs) : null),
  };
}

/** a / b rounded to 2 decimals (null when either is missing). */
export function ratio(a, b) {
  if (a == null || b == null || b === 0) return null;
  return Math.round((a / b) * 100) / 100;
}
