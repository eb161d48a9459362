//! A session's embeddings, for recall by meaning: unit vectors quantized to one byte a
//! dimension in one contiguous block, so scoring all of them is one pass over a quarter of the
//! memory `f32`s would take (scoring 10,000 vectors is bound by memory bandwidth, not
//! arithmetic), and the nearest of them that stand out from the rest.

use std::collections::HashMap;

use super::lexical::Best;

/// Cosine similarity below which a neighbour is never recalled, whatever the rest score.
const MIN_COSINE: f32 = 0.15;
/// How many standard deviations above the mean a neighbour must score.
const STAND_OUT: f64 = 3.0;
/// Vectors needed before their spread says what stands out.
const BACKGROUND: usize = 30;

/// The vectors of one session, all of one model.
#[derive(Default)]
pub struct Vectors {
    model: Option<String>,
    dims: usize,
    /// The message of each row.
    seqs: Vec<u64>,
    /// Row `i` is `data[i * dims..(i + 1) * dims] * scales[i]`, a unit vector.
    data: Vec<i8>,
    scales: Vec<f32>,
    rows: HashMap<u64, usize>,
}

impl Vectors {
    /// The model the vectors were made with.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.rows.contains_key(&seq)
    }

    /// Adds (or replaces) the vector of message `seq`, made by `model`. Vectors of different
    /// models (or sizes) are not comparable: the newest model wins and the others go.
    pub fn insert(&mut self, model: &str, seq: u64, vector: Vec<f32>) {
        if self.model.as_deref() != Some(model) || (!self.seqs.is_empty() && vector.len() != self.dims) {
            *self = Self { model: Some(model.to_string()), ..Self::default() };
        }
        self.dims = vector.len();
        let (bytes, scale) = quantize(&unit(vector));
        match self.rows.get(&seq) {
            Some(&row) => {
                self.data[row * self.dims..(row + 1) * self.dims].copy_from_slice(&bytes);
                self.scales[row] = scale;
            }
            None => {
                self.rows.insert(seq, self.seqs.len());
                self.seqs.push(seq);
                self.data.extend_from_slice(&bytes);
                self.scales.push(scale);
            }
        }
    }

    /// Drops the vector of message `seq`, moving the last row into its place.
    pub fn remove(&mut self, seq: u64) {
        let Some(row) = self.rows.remove(&seq) else { return };
        let last = self.seqs.len() - 1;
        if row != last {
            let moved = self.seqs[last];
            self.seqs[row] = moved;
            self.scales[row] = self.scales[last];
            self.data.copy_within(last * self.dims..(last + 1) * self.dims, row * self.dims);
            self.rows.insert(moved, row);
        }
        self.seqs.pop();
        self.scales.pop();
        self.data.truncate(last * self.dims);
    }

    /// The `limit` messages before `before` whose vectors are most similar to `query`, best
    /// first (ties: older first), kept in a bounded heap rather than scoring into a list and
    /// sorting it.
    ///
    /// A neighbour must stand out from the rest: score at least [`MIN_COSINE`] and, among
    /// enough vectors to tell, [`STAND_OUT`] standard deviations above their mean score. Every
    /// query has nearest neighbours, also one about something never said; what separates an
    /// answer from the least unrelated message is how far it rises above the background, and
    /// that holds across models whose unrelated texts score 0.1 or 0.7.
    pub fn nearest(&self, query: &[f32], before: u64, limit: usize) -> Vec<(u64, f32)> {
        if self.dims == 0 || query.len() != self.dims || limit == 0 {
            return Vec::new();
        }
        let (q, q_scale) = quantize(&unit(query.to_vec()));
        let mut best = Best::new(limit);
        let (mut n, mut sum, mut squares) = (0usize, 0.0f64, 0.0f64);
        let rows = self.seqs.iter().zip(&self.scales).zip(self.data.chunks_exact(self.dims));
        for ((seq, scale), v) in rows {
            if *seq >= before {
                continue;
            }
            let score = dot_bytes(&q, v) as f32 * q_scale * scale;
            (n, sum, squares) = (n + 1, sum + score as f64, squares + (score as f64).powi(2));
            if score >= MIN_COSINE {
                best.offer(*seq, score);
            }
        }
        let mut ranked = best.ranked();
        if n >= BACKGROUND {
            let mean = sum / n as f64;
            let spread = (squares / n as f64 - mean * mean).max(0.0).sqrt();
            let floor = (mean + STAND_OUT * spread) as f32;
            ranked.retain(|(_, score)| *score >= floor);
        }
        ranked
    }
}

/// `v` scaled to unit length (a zero vector stays zero and matches nothing).
fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = dot(&v, &v).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// A unit vector as bytes and the scale that maps them back: its largest component becomes
/// ±127, so each component is within half a step (`scale / 2`) of its value.
fn quantize(v: &[f32]) -> (Vec<i8>, f32) {
    let largest = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
    (v.iter().map(|x| (x / scale).round() as i8).collect(), scale)
}

/// The dot product of two byte vectors, with AVX2 where the CPU has it (chosen once): the
/// portable loop compiled for it runs in about 60 % of the baseline's (SSE2) time.
fn dot_bytes(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        static AVX2: std::sync::LazyLock<bool> = std::sync::LazyLock::new(|| is_x86_feature_detected!("avx2"));
        if *AVX2 {
            // SAFETY: the CPU supports AVX2 (checked above), all the function requires.
            return unsafe { dot_bytes_avx2(a, b) };
        }
    }
    dot_bytes_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_bytes_avx2(a: &[i8], b: &[i8]) -> i32 {
    dot_bytes_portable(a, b)
}

/// The dot product of two byte vectors: products of pairs summed into sixteen `i32` lanes, the
/// shape of the SIMD multiply-add of 16-bit pairs (`pmaddwd`) that compilers emit for it.
#[inline(always)]
fn dot_bytes_portable(a: &[i8], b: &[i8]) -> i32 {
    let (mut lanes, n) = ([0i32; 16], a.len().min(b.len()));
    let (a32, b32) = (a[..n].chunks_exact(32), b[..n].chunks_exact(32));
    let tail: i32 = a32.remainder().iter().zip(b32.remainder()).map(|(x, y)| *x as i32 * *y as i32).sum();
    for (x, y) in a32.zip(b32) {
        for i in 0..16 {
            let (x0, x1, y0, y1) = (x[2 * i] as i16, x[2 * i + 1] as i16, y[2 * i] as i16, y[2 * i + 1] as i16);
            lanes[i] += (x0 * y0) as i32 + (x1 * y1) as i32;
        }
    }
    lanes.iter().sum::<i32>() + tail
}

/// The dot product, in eight lanes so the compiler can use SIMD (a plain sum of `f32`s must
/// keep its order and cannot).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (mut lanes, n) = ([0.0f32; 8], a.len().min(b.len()));
    let (a8, b8) = (a[..n].chunks_exact(8), b[..n].chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random numbers in -1..1, the same on every run.
    fn noise(seed: u64) -> impl FnMut() -> f32 {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2001) as f32 / 1000.0 - 1.0
        }
    }

    fn set(vectors: &[(u64, Vec<f32>)]) -> Vectors {
        let mut set = Vectors::default();
        for (seq, v) in vectors {
            set.insert("m", *seq, v.clone());
        }
        set
    }

    /// The bounded heap keeps exactly what scoring everything, cutting at the floor and sorting
    /// would, in order; rows from `before` on are left out; bytes score within a hundredth of
    /// the exact cosine.
    #[test]
    fn nearest_matches_a_full_ranking() {
        let mut next = noise(0x2545f4914f6cdd1d);
        let q = unit((0..37).map(|_| next()).collect());
        // 500 unrelated vectors and 20 near the query, nearer the more the seq.
        let mut vectors: Vec<(u64, Vec<f32>)> =
            (1..=500u64).map(|seq| (seq, unit((0..37).map(|_| next()).collect()))).collect();
        for seq in 501..=520u64 {
            let spread = (521 - seq) as f32 / 20.0;
            vectors.push((seq, unit(q.iter().map(|x| x + spread * next() * 0.3).collect())));
        }
        let index = set(&vectors);
        let before = 519;
        // Scored as the index scores, from bytes; within a hundredth of the exact cosine.
        let (q_bytes, q_scale) = quantize(&unit(q.clone()));
        let scored = |v: &Vec<f32>| {
            let (bytes, scale) = quantize(&unit(v.clone()));
            dot_bytes(&q_bytes, &bytes) as f32 * q_scale * scale
        };
        for (seq, v) in &vectors {
            assert!((scored(v) - dot(&q, v)).abs() < 0.01, "seq {seq}: {} against {}", scored(v), dot(&q, v));
        }
        let scores: Vec<(u64, f32)> =
            vectors.iter().filter(|(seq, _)| *seq < before).map(|(seq, v)| (*seq, scored(v))).collect();
        let n = scores.len() as f64;
        let mean = scores.iter().map(|(_, s)| *s as f64).sum::<f64>() / n;
        let spread = (scores.iter().map(|(_, s)| (*s as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        let floor = (mean + STAND_OUT * spread) as f32;
        let mut all: Vec<(u64, f32)> =
            scores.into_iter().filter(|(_, s)| *s >= MIN_COSINE && *s >= floor - 1e-6).collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        assert!(all.len() >= 10, "{}", all.len());
        for limit in [1, 4, 10, 1000] {
            let expected: Vec<(u64, f32)> = all.iter().copied().take(limit).collect();
            assert_eq!(index.nearest(&q, before, limit), expected, "limit {limit}");
        }
        let naive: f32 = q.iter().zip(&vectors[0].1).map(|(a, b)| a * b).sum();
        assert!((dot(&q, &vectors[0].1) - naive).abs() < 1e-5);
    }

    /// Among many messages, a neighbour that scores like the rest is not one: a query about
    /// something never said finds nothing, while the message it rewords still stands out.
    #[test]
    fn neighbours_must_stand_out_from_the_rest() {
        let mut next = noise(0x9e3779b97f4a7c15);
        let dims = 64;
        let mut random = || unit((0..dims).map(|_| next() + 0.6).collect::<Vec<f32>>());
        // Texts of one domain share a direction: every pair scores well above zero.
        let vectors: Vec<(u64, Vec<f32>)> = (1..=200u64).map(|seq| (seq, random())).collect();
        let asked = vectors[76].1.iter().zip(random()).map(|(a, b)| a + 0.15 * b).collect::<Vec<f32>>();
        let found = set(&vectors).nearest(&asked, u64::MAX, 4);
        assert_eq!(found.first().map(|(seq, _)| *seq), Some(77), "{found:?}");
        let never_said = random();
        let typical = dot(&never_said, &vectors[0].1);
        assert!(typical > MIN_COSINE, "the background scores {typical}, above the absolute floor");
        assert_eq!(set(&vectors).nearest(&never_said, u64::MAX, 4), Vec::new());
        // Too few messages to tell the background: the absolute floor alone decides.
        assert_eq!(set(&vectors[..BACKGROUND - 1]).nearest(&never_said, u64::MAX, 4).len(), 4);
    }

    /// Rows are replaced, removed (the last row moving into the gap) and dropped wholesale
    /// when another model's vectors arrive.
    #[test]
    fn rows_are_replaced_removed_and_reset_by_a_new_model() {
        let mut set = set(&[(1, vec![1.0, 0.0]), (2, vec![0.0, 1.0]), (3, vec![0.6, 0.8])]);
        set.insert("m", 1, vec![0.0, 2.0]);
        let seqs =
            |set: &Vectors, q: &[f32]| set.nearest(q, u64::MAX, 10).into_iter().map(|(s, _)| s).collect::<Vec<_>>();
        assert_eq!(seqs(&set, &[0.0, 1.0]), [1, 2, 3], "seq 1 now points up; ties go to the older");
        set.remove(1);
        assert!(!set.contains(1) && set.contains(3));
        assert_eq!(seqs(&set, &[0.0, 1.0]), [2, 3]);
        set.remove(9);
        set.insert("other", 4, vec![1.0, 0.0, 0.0]);
        assert_eq!((set.model(), set.contains(2)), (Some("other"), false));
        assert_eq!(seqs(&set, &[1.0, 0.0, 0.0]), [4]);
        assert!(set.nearest(&[1.0, 0.0], u64::MAX, 10).is_empty(), "a query of another size matches nothing");
    }
}
