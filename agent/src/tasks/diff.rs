//! A small unified line diff for reports (configuration files are short; a crate is not needed).
//! The lines that differ are found with a longest-common-subsequence table after trimming the
//! common start and end; when that middle part is too large for the table, it is shown as all
//! removed then all added, which is still a correct diff.

const CONTEXT: usize = 3;
/// At most this many lines of diff are reported.
const MAX_LINES: usize = 120;
/// Largest table (cells) the line matcher builds.
const MAX_CELLS: usize = 4_000_000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Same(usize, usize),
    Removed(usize),
    Added(usize),
}

/// `--- path` / `+++ path` and hunks; empty when the texts' lines are equal.
pub fn unified(path: &str, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let ops = line_ops(&a, &b);
    let changes: Vec<usize> =
        ops.iter().enumerate().filter(|(_, op)| !matches!(op, Op::Same(..))).map(|(i, _)| i).collect();
    if changes.is_empty() {
        return String::new();
    }
    // Old and new line numbers reached before each op.
    let mut before = Vec::with_capacity(ops.len());
    let (mut i, mut j) = (0, 0);
    for op in &ops {
        before.push((i, j));
        match op {
            Op::Same(..) => (i, j) = (i + 1, j + 1),
            Op::Removed(_) => i += 1,
            Op::Added(_) => j += 1,
        }
    }
    let mut out = vec![format!("--- {path}"), format!("+++ {path}")];
    let mut k = 0;
    while k < changes.len() {
        let first = changes[k];
        while k + 1 < changes.len() && changes[k + 1] - changes[k] <= 2 * CONTEXT + 1 {
            k += 1;
        }
        let (start, end) = (first.saturating_sub(CONTEXT), (changes[k] + CONTEXT).min(ops.len() - 1));
        let hunk = &ops[start..=end];
        let old_len = hunk.iter().filter(|op| !matches!(op, Op::Added(_))).count();
        let new_len = hunk.iter().filter(|op| !matches!(op, Op::Removed(_))).count();
        let (i0, j0) = before[start];
        let at = |first: usize, len: usize| if len == 0 { first } else { first + 1 };
        out.push(format!("@@ -{},{old_len} +{},{new_len} @@", at(i0, old_len), at(j0, new_len)));
        for op in hunk {
            out.push(match *op {
                Op::Same(i, _) => format!(" {}", a[i]),
                Op::Removed(i) => format!("-{}", a[i]),
                Op::Added(j) => format!("+{}", b[j]),
            });
        }
        k += 1;
    }
    if out.len() > MAX_LINES {
        let more = out.len() - MAX_LINES;
        out.truncate(MAX_LINES);
        out.push(format!("... ({more} more lines of diff)"));
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

fn line_ops(a: &[&str], b: &[&str]) -> Vec<Op> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    let (ma, mb) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops: Vec<Op> = (0..prefix).map(|i| Op::Same(i, i)).collect();
    let (n, m) = (ma.len(), mb.len());
    if (n + 1).saturating_mul(m + 1) > MAX_CELLS {
        ops.extend((0..n).map(|i| Op::Removed(prefix + i)));
        ops.extend((0..m).map(|j| Op::Added(prefix + j)));
    } else {
        // lcs[i][j]: length of the longest common subsequence of ma[i..] and mb[j..].
        let w = m + 1;
        let mut lcs = vec![0u32; (n + 1) * w];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * w + j] = if ma[i] == mb[j] {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && ma[i] == mb[j] {
                ops.push(Op::Same(prefix + i, prefix + j));
                (i, j) = (i + 1, j + 1);
            } else if i < n && (j == m || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
                ops.push(Op::Removed(prefix + i)); // removals first, as diff(1) shows them
                i += 1;
            } else {
                ops.push(Op::Added(prefix + j));
                j += 1;
            }
        }
    }
    ops.extend((0..suffix).map(|k| Op::Same(a.len() - suffix + k, b.len() - suffix + k)));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_give_no_diff() {
        assert_eq!(unified("f", "a\nb\n", "a\nb\n"), "");
    }

    #[test]
    fn one_changed_line_with_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
        assert_eq!(
            unified("/etc/x", old, new),
            "--- /etc/x\n+++ /etc/x\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"
        );
    }

    #[test]
    fn new_file_and_far_apart_changes() {
        assert_eq!(unified("f", "", "a\nb\n"), "--- f\n+++ f\n@@ -0,0 +1,2 @@\n+a\n+b\n");
        let old: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let new: String = (1..=20)
            .filter(|&i| i != 19)
            .map(|i| if i == 2 { "two\n".to_string() } else { format!("{i}\n") })
            .collect();
        let d = unified("f", &old, &new);
        assert_eq!(d.matches("@@ -").count(), 2, "{d}");
        assert!(d.contains("@@ -1,5 +1,5 @@\n 1\n-2\n+two\n 3\n"), "{d}");
        assert!(d.contains("@@ -16,5 +16,4 @@\n 16\n 17\n 18\n-19\n 20\n"), "{d}");
    }

    #[test]
    fn long_diffs_are_cut() {
        let new: String = (0..500).map(|i| format!("{i}\n")).collect();
        let d = unified("f", "", &new);
        assert_eq!(d.lines().count(), MAX_LINES + 1);
        assert!(d.ends_with("... (383 more lines of diff)\n"), "{d}");
    }
}
