// Figure 7: server figures (issue 3 "Speed"): batch meta for 100 buckets under load from a
// client on 127.0.0.1. Filled in below.
export async function run() {
  return { rows: [], notes: "not measured yet" };
}
