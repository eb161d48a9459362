//! A session's embeddings, for recall by meaning: unit vectors quantized to one byte a
//! dimension in one contiguous block (a quarter of the memory `f32`s would take), and the
//! nearest of them that stand out from the rest.
//!
//! Small sessions are scored exactly. In a long one, scoring every vector would grow each turn
//! with the session (10,000 vectors of 256 dimensions took 230 µs), so each vector also keeps a
//! sign code: one bit a dimension after a random rotation (random signs, then a Walsh–Hadamard
//! transform), the SimHash of the vector. Differing bits estimate the angle between two vectors
//! whatever the model's dimensions mean; the rotation spreads a vector whose meaning sits in a
//! few dimensions over all of them, which signs alone would lose. The codes pick
//! [`CANDIDATES`] rows in a pass over an eighth of the bytes, those are scored exactly, and what
//! stands out is judged against a sample of [`SAMPLE`] rows, in runs spread over the session.

use std::collections::HashMap;

use super::lexical::Best;

/// Cosine similarity below which a neighbour is never recalled, whatever the rest score.
const MIN_COSINE: f32 = 0.15;
/// How many standard deviations above the mean a neighbour must score.
const STAND_OUT: f64 = 3.0;
/// Vectors needed before their spread says what stands out.
const BACKGROUND: usize = 30;
/// Rows up to which every vector is scored exactly; beyond, codes choose what is scored.
const EXACT_UP_TO: usize = 1024;
/// Rows the codes choose to score exactly (at least), for any `limit` up to an eighth of it.
const CANDIDATES: usize = 64;
/// Rows scored for the background's mean and spread when not all are.
const SAMPLE: usize = 128;
/// Runs the sample is taken in.
const RUNS: usize = 8;

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
    /// Row `i`'s sign code is `codes[i * words..(i + 1) * words]`.
    codes: Vec<u64>,
    /// The rotation's random signs, one per dimension padded to a power of two.
    rotation: Vec<f32>,
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
        if self.model.as_deref() != Some(model) || (self.dims != 0 && vector.len() != self.dims) {
            *self = Self { model: Some(model.to_string()), ..Self::default() };
        }
        if self.rotation.is_empty() {
            self.dims = vector.len();
            self.rotation = rotation(self.dims.next_power_of_two().max(64));
        }
        let v = unit(vector);
        let (bytes, scale) = quantize(&v);
        let code = self.code(&v);
        let words = code.len();
        match self.rows.get(&seq) {
            Some(&row) => {
                self.data[row * self.dims..(row + 1) * self.dims].copy_from_slice(&bytes);
                self.scales[row] = scale;
                self.codes[row * words..(row + 1) * words].copy_from_slice(&code);
            }
            None => {
                self.rows.insert(seq, self.seqs.len());
                self.seqs.push(seq);
                self.data.extend_from_slice(&bytes);
                self.scales.push(scale);
                self.codes.extend_from_slice(&code);
            }
        }
    }

    /// The sign code of unit vector `v`: its signs after the rotation, 64 to a word.
    fn code(&self, v: &[f32]) -> Vec<u64> {
        let mut x: Vec<f32> = self.rotation.iter().enumerate().map(|(i, s)| v.get(i).map_or(0.0, |x| x * s)).collect();
        hadamard(&mut x);
        x.chunks_exact(64)
            .map(|chunk| chunk.iter().enumerate().fold(0u64, |word, (i, x)| word | (u64::from(*x > 0.0) << i)))
            .collect()
    }

    /// Words per sign code.
    fn words(&self) -> usize {
        self.rotation.len() / 64
    }

    /// Drops the vector of message `seq`, moving the last row into its place.
    pub fn remove(&mut self, seq: u64) {
        let Some(row) = self.rows.remove(&seq) else { return };
        let (last, words) = (self.seqs.len() - 1, self.words());
        if row != last {
            let moved = self.seqs[last];
            self.seqs[row] = moved;
            self.scales[row] = self.scales[last];
            self.data.copy_within(last * self.dims..(last + 1) * self.dims, row * self.dims);
            self.codes.copy_within(last * words..(last + 1) * words, row * words);
            self.rows.insert(moved, row);
        }
        self.seqs.pop();
        self.scales.pop();
        self.data.truncate(last * self.dims);
        self.codes.truncate(last * words);
    }

    /// The `limit` messages before `before` whose vectors are most similar to `query`, best
    /// first (ties: older first), kept in a bounded heap rather than scoring into a list and
    /// sorting it. In a long session these are the best of the rows the sign codes choose.
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
        let query = unit(query.to_vec());
        let (q, q_scale) = quantize(&query);
        let score = |row: usize| {
            dot_bytes(&q, &self.data[row * self.dims..(row + 1) * self.dims]) as f32 * q_scale * self.scales[row]
        };
        let rows = self.seqs.len();
        let exact = rows <= EXACT_UP_TO;
        let chosen = match exact {
            true => (0..rows).filter(|row| self.seqs[*row] < before).collect(),
            false => self.closest_codes(&self.code(&query), before, CANDIDATES.max(limit * 8)),
        };
        let mut best = Best::new(limit);
        let mut background = Spread::default();
        for row in chosen {
            let score = score(row);
            if exact {
                background.add(score);
            }
            if score >= MIN_COSINE {
                best.offer(self.seqs[row], score);
            }
        }
        if !exact {
            // Runs of neighbouring rows, evenly spaced: read in order, not one cache miss a row.
            let stride = rows / RUNS;
            (0..RUNS)
                .flat_map(|run| run * stride..(run * stride + SAMPLE / RUNS).min(rows))
                .filter(|row| self.seqs[*row] < before)
                .for_each(|row| background.add(score(row)));
        }
        let mut ranked = best.ranked();
        if let Some(floor) = background.floor() {
            ranked.retain(|(_, score)| *score >= floor);
        }
        ranked
    }

    /// The rows before `before` whose codes differ least from `code`: `wanted` of them, more
    /// when several differ by as much as the last one taken (up to twice as many).
    fn closest_codes(&self, code: &[u64], before: u64, wanted: usize) -> Vec<usize> {
        let mut differing = hamming_distances(code, &self.codes);
        let mut counts = vec![0usize; code.len() * 64 + 2];
        for (d, seq) in differing.iter_mut().zip(&self.seqs) {
            if *seq >= before {
                *d = u16::MAX;
            } else {
                counts[*d as usize] += 1;
            }
        }
        // The distance within which `wanted` rows lie, and how many lie closer.
        let (mut within, mut closer) = (0, 0);
        while within + 1 < counts.len() && closer + counts[within] < wanted {
            closer += counts[within];
            within += 1;
        }
        let mut at_edge = (2 * wanted).saturating_sub(closer);
        let mut chosen = Vec::with_capacity(closer + at_edge.min(counts[within]));
        for (row, d) in differing.into_iter().enumerate() {
            if (d as usize) < within {
                chosen.push(row);
            } else if d as usize == within && at_edge > 0 {
                at_edge -= 1;
                chosen.push(row);
            }
        }
        chosen
    }
}

/// The mean and spread of scores, and the floor a neighbour must reach above them.
#[derive(Default)]
struct Spread {
    n: usize,
    sum: f64,
    squares: f64,
}

impl Spread {
    fn add(&mut self, score: f32) {
        (self.n, self.sum, self.squares) = (self.n + 1, self.sum + score as f64, self.squares + (score as f64).powi(2));
    }

    /// [`STAND_OUT`] standard deviations above the mean, once there are enough scores to tell.
    fn floor(&self) -> Option<f32> {
        if self.n < BACKGROUND {
            return None;
        }
        let mean = self.sum / self.n as f64;
        let spread = (self.squares / self.n as f64 - mean * mean).max(0.0).sqrt();
        Some((mean + STAND_OUT * spread) as f32)
    }
}

/// Random signs for a rotation of `n` dimensions, the same on every run.
fn rotation(n: usize) -> Vec<f32> {
    let mut state = 0x9e3779b97f4a7c15u64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state & 1 == 0 { 1.0 } else { -1.0 }
        })
        .collect()
}

/// The Walsh–Hadamard transform of `x` (a power of two long), unnormalised: a rotation and a
/// scaling, in `n log n` steps.
fn hadamard(x: &mut [f32]) {
    let mut half = 1;
    while half < x.len() {
        for block in x.chunks_exact_mut(2 * half) {
            let (a, b) = block.split_at_mut(half);
            for (a, b) in a.iter_mut().zip(b) {
                (*a, *b) = (*a + *b, *a - *b);
            }
        }
        half *= 2;
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

/// Whether the CPU has AVX2 and POPCNT (checked once): the portable loops below compiled for
/// them run the dot product in about 60 % of the baseline's (SSE2) time, and count bits in one
/// instruction instead of a dozen.
#[cfg(target_arch = "x86_64")]
static FAST: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("popcnt"));

/// The dot product of two byte vectors.
fn dot_bytes(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if *FAST {
        // SAFETY: the CPU supports AVX2 and POPCNT (checked above), all the function requires.
        return unsafe { dot_bytes_fast(a, b) };
    }
    dot_bytes_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
fn dot_bytes_fast(a: &[i8], b: &[i8]) -> i32 {
    dot_bytes_portable(a, b)
}

/// How many bits of `code` differ from each code in `codes` (codes of its length, one after
/// another).
fn hamming_distances(code: &[u64], codes: &[u64]) -> Vec<u16> {
    #[cfg(target_arch = "x86_64")]
    if *FAST {
        // SAFETY: as in `dot_bytes`.
        return unsafe { hamming_distances_fast(code, codes) };
    }
    hamming_distances_portable(code, codes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
fn hamming_distances_fast(code: &[u64], codes: &[u64]) -> Vec<u16> {
    hamming_distances_portable(code, codes)
}

#[inline(always)]
fn hamming_distances_portable(code: &[u64], codes: &[u64]) -> Vec<u16> {
    /// Codes of `W` words, unrolled.
    #[inline(always)]
    fn fixed<const W: usize>(code: &[u64], codes: &[u64]) -> Vec<u16> {
        let code: &[u64; W] = code.try_into().expect("a code of W words");
        let (codes, _) = codes.as_chunks::<W>();
        codes.iter().map(|other| (0..W).map(|i| (other[i] ^ code[i]).count_ones()).sum::<u32>() as u16).collect()
    }
    match code.len() {
        1 => fixed::<1>(code, codes),
        2 => fixed::<2>(code, codes),
        4 => fixed::<4>(code, codes),
        8 => fixed::<8>(code, codes),
        16 => fixed::<16>(code, codes),
        32 => fixed::<32>(code, codes),
        _ => codes
            .chunks_exact(code.len())
            .map(|other| other.iter().zip(code).map(|(a, b)| (a ^ b).count_ones()).sum::<u32>() as u16)
            .collect(),
    }
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

    /// A long session's search (rows chosen by sign code, the background from a sample) finds
    /// what scoring every vector finds, on vectors shaped like the quality suite's: meaning on
    /// a few axes of its own (which signs alone would lose), a common direction and noise. A
    /// question about nothing said still finds nothing.
    #[test]
    fn long_sessions_find_what_scoring_everything_finds() {
        let (dims, rows) = (384, 3000u64);
        let mut next = noise(0x51_7c_c1_b7_27_22_0a_95);
        let mut vector = |concepts: &[usize]| {
            let jitter = unit((0..dims).map(|_| next()).collect());
            let mut v = vec![0.0f32; dims];
            concepts.iter().for_each(|c| v[*c] += 1.0);
            let mut v: Vec<f32> = unit(v).iter().zip(&jitter).map(|(c, j)| c + 0.25 * j).collect();
            v[0] += 0.6;
            unit(v)
        };
        // Three concepts of 380 each, overlapping between rows.
        let concepts =
            |seq: u64| [1 + (seq * 7 % 380) as usize, 1 + (seq * 13 % 379) as usize, 2 + (seq % 373) as usize];
        let all: Vec<(u64, Vec<f32>)> = (1..=rows).map(|seq| (seq, vector(&concepts(seq)))).collect();
        let index = set(&all);
        assert!(all.len() > EXACT_UP_TO);
        let before = rows - 100;
        for asked in (1..before).step_by(97) {
            let query = vector(&concepts(asked));
            let mut exact: Vec<(u64, f32)> =
                all.iter().filter(|(seq, _)| *seq < before).map(|(seq, v)| (*seq, dot(&query, v))).collect();
            exact.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let found = index.nearest(&query, before, 4);
            assert_eq!(found.first().map(|(seq, _)| *seq), Some(asked), "{found:?}, exact {:?}", &exact[..4]);
            for (seq, score) in &found {
                let rank = exact.iter().position(|(s, _)| s == seq).unwrap();
                assert!(rank < 8, "seq {seq} ({score}) ranks {rank} of all; exact {:?}", &exact[..8]);
            }
        }
        assert_eq!(index.nearest(&vector(&[383]), before, 4), Vec::new(), "nothing said about concept 383");
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
