//! A graph's rows as they are computed, kept in a temporary file instead of in memory.
//!
//! Each row spans every active feature of the prompt, not only the ones that end up nodes,
//! because the ranking that picks the next features to compute needs all of them. On a long
//! prompt that is most of a graph's memory: at 1,024 tokens on Gemma 3 270M a row is ~31k
//! nonzero entries over 190,944 active features, so circuit-tracer's 7,500 rows are ~1.9 GB
//! (BENCHMARKS.md, "Attribution graphs"). The file is read back twice at each re-ranking
//! and once to assemble the adjacency; between those the operating system caches it.
//!
//! The ranking is circuit-tracer's `compute_partial_influences` (see `partial_influence`),
//! computed in two streamed passes instead of one pass over every row per power-iteration
//! step, so the rows need not be in memory.

use color_eyre::eyre::{eyre, Result, WrapErr};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// One computed row's place in the file.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The node the row is the row of.
    node: usize,
    /// Its nonzero entries.
    len: usize,
    /// The sum of their magnitudes, what the row is normalised by.
    magnitude: f32,
}

/// Rows in the order they were computed, each as its nonzero entries (column, value),
/// little-endian `u32` and `f32` pairs in an unnamed temporary file (removed by the
/// operating system when the store is dropped, or the process ends, however it ends).
pub struct Rows {
    file: BufWriter<File>,
    entries: Vec<Entry>,
}

impl Rows {
    pub fn new() -> Result<Self> {
        let dir = std::env::temp_dir();
        let file = tempfile::tempfile_in(&dir)
            .wrap_err_with(|| format!("cannot make a temporary file for the graph's rows in {}: set TMPDIR to a writable folder", dir.display()))?;
        Ok(Self { file: BufWriter::with_capacity(1 << 20, file), entries: Vec::new() })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The node of each row, in order.
    pub fn nodes(&self) -> impl Iterator<Item = usize> + '_ {
        self.entries.iter().map(|e| e.node)
    }

    /// Appends `node`'s row, given dense over every source.
    pub fn push(&mut self, node: usize, dense: &[f32]) -> Result<()> {
        let mut len = 0;
        let mut magnitude = 0f32;
        for (c, &v) in dense.iter().enumerate() {
            if v != 0.0 {
                let c = u32::try_from(c).map_err(|_| eyre!("a graph row of {} columns is past what a row can index", dense.len()))?;
                self.file.write_all(&c.to_le_bytes()).and_then(|()| self.file.write_all(&v.to_le_bytes())).wrap_err(WRITE)?;
                len += 1;
                magnitude += v.abs();
            }
        }
        self.entries.push(Entry { node, len, magnitude });
        Ok(())
    }

    /// Calls `f(row, node, columns, values)` for every row, in order.
    pub fn for_each(&mut self, mut f: impl FnMut(usize, usize, &[u32], &[f32])) -> Result<()> {
        self.file.flush().wrap_err(WRITE)?;
        let file = self.file.get_mut();
        file.seek(SeekFrom::Start(0)).wrap_err(READ)?;
        let mut reader = BufReader::with_capacity(1 << 20, &*file);
        let (mut bytes, mut columns, mut values) = (Vec::new(), Vec::new(), Vec::new());
        for (i, e) in self.entries.iter().enumerate() {
            bytes.resize(e.len * 8, 0);
            reader.read_exact(&mut bytes).wrap_err(READ)?;
            columns.clear();
            values.clear();
            for pair in bytes.chunks_exact(8) {
                let (c, v) = pair.split_at(4);
                columns.push(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                values.push(f32::from_le_bytes([v[0], v[1], v[2], v[3]]));
            }
            f(i, e.node, &columns, &values);
        }
        drop(reader);
        file.seek(SeekFrom::End(0)).wrap_err(READ)?;
        Ok(())
    }

    /// circuit-tracer's estimate of each of `n` nodes' influence from the rows so far (logits
    /// last, weighted by `probs`; they have no columns): `w (N + N^2 + ...)`, with `N` the
    /// rows' magnitudes normalised to sum to 1 and `w` the logits' probabilities.
    ///
    /// Only nodes with rows pass influence on, so the series is `(q_0 + q_1 + ...) N` where
    /// `q_0 = w` and `q_{k+1} = q_k S`, `S` the rows' entries in the columns of nodes that have
    /// rows (the features computed so far: a few thousand squared at most, kept in memory).
    /// One pass collects `S`, the series runs on it, a second pass multiplies by `N`.
    pub fn partial_influence(&mut self, n: usize, probs: &[f32]) -> Result<Vec<f32>> {
        let rows = self.len();
        let mut row_of = vec![u32::MAX; n];
        for (i, e) in self.entries.iter().enumerate() {
            row_of[e.node] = i as u32;
        }
        // S by source row: (target row, normalised weight).
        let mut starts = Vec::with_capacity(rows + 1);
        let mut links: Vec<(u32, f32)> = Vec::new();
        let magnitudes: Vec<f32> = self.entries.iter().map(|e| e.magnitude.max(1e-8)).collect();
        self.for_each(|i, _, columns, values| {
            starts.push(links.len());
            for (&c, &v) in columns.iter().zip(values) {
                let j = row_of[c as usize];
                if j != u32::MAX {
                    links.push((j, v.abs() / magnitudes[i]));
                }
            }
        })?;
        starts.push(links.len());
        let mut q = vec![0f32; rows];
        let first_logit = n - probs.len();
        for (i, e) in self.entries.iter().enumerate() {
            if e.node >= first_logit {
                q[i] = probs[e.node - first_logit];
            }
        }
        let mut sum = q.clone();
        // The graph is acyclic: the series ends within as many steps as there are rows
        // (circuit-tracer stops at 128).
        for _ in 0..rows.min(128) {
            let mut next = vec![0f32; rows];
            for (i, &qi) in q.iter().enumerate() {
                if qi != 0.0 {
                    for &(j, w) in &links[starts[i]..starts[i + 1]] {
                        next[j as usize] += qi * w;
                    }
                }
            }
            if next.iter().all(|&x| x == 0.0) {
                break;
            }
            sum.iter_mut().zip(&next).for_each(|(s, x)| *s += x);
            q = next;
        }
        let mut total = vec![0f32; n];
        self.for_each(|i, _, columns, values| {
            let scale = sum[i] / magnitudes[i];
            if scale != 0.0 {
                for (&c, &v) in columns.iter().zip(values) {
                    total[c as usize] += scale * v.abs();
                }
            }
        })?;
        Ok(total)
    }
}

const WRITE: &str = "cannot write the graph's rows to their temporary file (is the temporary folder full? set TMPDIR to another)";
const READ: &str = "cannot read the graph's rows back from their temporary file";

#[cfg(test)]
mod tests {
    use super::Rows;

    /// The direct power iteration over every row, as circuit-tracer's
    /// `compute_partial_influences` runs it.
    fn by_power_iteration(rows: &[(usize, Vec<f32>)], n: usize, probs: &[f32]) -> Vec<f32> {
        let mut prod = vec![0f32; n];
        prod[n - probs.len()..].copy_from_slice(probs);
        let mut total = vec![0f32; n];
        loop {
            let mut next = vec![0f32; n];
            for (node, row) in rows {
                let sum: f32 = row.iter().map(|v| v.abs()).sum::<f32>().max(1e-8);
                row.iter().enumerate().for_each(|(c, v)| next[c] += prod[*node] * v.abs() / sum);
            }
            if next.iter().all(|&x| x == 0.0) {
                return total;
            }
            total.iter_mut().zip(&next).for_each(|(t, x)| *t += x);
            prod = next;
        }
    }

    #[test]
    fn the_streamed_influence_is_the_power_iterations() {
        // Nodes: features 0..4, an error 4, a token 5, logits 6 and 7. Rows for the logits and
        // for features 1 and 3 (features 0 and 2 not yet computed); feature 3 reads feature 1.
        let n = 8;
        let w = |e: &[(usize, f32)]| {
            let mut r = vec![0f32; n];
            e.iter().for_each(|&(c, v)| r[c] = v);
            r
        };
        let rows = vec![
            (6, w(&[(1, 2.0), (3, -1.0), (4, 0.5)])),
            (7, w(&[(3, 1.0), (5, 3.0), (2, -0.25)])),
            (3, w(&[(1, -2.0), (0, 1.0), (5, 1.0)])),
            (1, w(&[(0, 0.5), (4, 0.5)])),
        ];
        let probs = [0.7, 0.2];
        let mut store = Rows::new().expect("store");
        for (node, row) in &rows {
            store.push(*node, row).expect("push");
        }
        let got = store.partial_influence(n, &probs).expect("influence");
        let want = by_power_iteration(&rows, n, &probs);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{got:?} vs {want:?}");
        }
        assert!(want[0] > 0.0 && want[2] > 0.0, "features without rows are ranked too");
        // Rows read back as written, and the store can still be appended to after a read.
        store.push(0, &w(&[(5, 4.0)])).expect("push after reading");
        let mut seen = Vec::new();
        store.for_each(|i, node, c, v| seen.push((i, node, c.to_vec(), v.to_vec()))).expect("read");
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[0], (0, 6, vec![1, 3, 4], vec![2.0, -1.0, 0.5]));
        assert_eq!(seen[4], (4, 0, vec![5], vec![4.0]));
    }
}
