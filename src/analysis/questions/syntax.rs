//! Open question 1, syntax or semantics: does a feature the findings name read its token,
//! a few tokens around it, or a longer context? Pure functions on what probe.rs measured.
//!
//! A feature *reads* the shortest context in which it reaches `REACH` of its full-context
//! activation at its strongest token: the token alone after BOS (a token feature), at most
//! `LOCAL` tokens before it (local context), or more (long context: 8 or 16 tokens, or
//! never within 16). The shuffle test stands beside it: the category's mean activation with
//! every text's tokens in a seeded random order, as a share of the original; surface
//! features keep it, features of word order lose it.

use super::probe::{Measured, Strip, CONTEXTS};
use serde::Serialize;

/// The share of the full-context activation a context must give.
pub const REACH: f32 = 0.5;
/// The most tokens before the strongest one a "local context" feature needs.
pub const LOCAL: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reads {
    Token,
    LocalContext,
    LongContext,
    /// Never fires on the category's texts (a top feature of an all-zero vector).
    Silent,
}

impl Reads {
    pub const CLASSES: [Reads; 3] = [Reads::Token, Reads::LocalContext, Reads::LongContext];

    pub fn name(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::LocalContext => "local context",
            Self::LongContext => "long context",
            Self::Silent => "silent",
        }
    }
}

/// The class of a feature whose strongest token gives `full` in full context and
/// `context[i]` with `CONTEXTS[i]` tokens before it.
pub fn reads(full: f32, context: &[f32]) -> Reads {
    if full <= 0.0 {
        return Reads::Silent;
    }
    match CONTEXTS.iter().zip(context).find(|(_, &v)| v >= REACH * full) {
        Some((0, _)) => Reads::Token,
        Some((&n, _)) if n <= LOCAL => Reads::LocalContext,
        _ => Reads::LongContext,
    }
}

/// Why the findings name the feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The category's n-th largest (from 1).
    Top(usize),
    /// The category's best specialist, with its score.
    Specialist(i64),
}

/// One probed feature, read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading {
    pub sae: String,
    pub category: usize,
    pub feature: u32,
    pub role: Role,
    /// Its strongest token, and its value there in full context.
    pub token: Option<String>,
    pub full: f32,
    /// Its value with `CONTEXTS[i]` tokens before the strongest, as a share of `full`.
    pub context: Vec<f32>,
    /// The category's mean over the shuffles as a share of the original mean, and the
    /// shuffles' standard deviation of that share.
    pub shuffle_kept: f32,
    pub shuffle_spread: f32,
    pub reads: Reads,
    pub original: Option<Strip>,
    pub shuffle: Option<Strip>,
}

pub fn reading(sae: String, category: usize, feature: u32, role: Role, m: &Measured) -> Reading {
    let share = |v: f32, of: f32| if of > 0.0 { v / of } else { 0.0 };
    let kept: Vec<f32> = m.shuffled.iter().map(|&s| share(s, m.mean)).collect();
    let mean = kept.iter().sum::<f32>() / kept.len().max(1) as f32;
    let var = kept.iter().map(|k| (k - mean).powi(2)).sum::<f32>() / kept.len().max(1) as f32;
    let token = m.strongest.and_then(|(_, p)| m.original.as_ref().and_then(|s| s.tokens.get(p).cloned()));
    Reading {
        sae,
        category,
        feature,
        role,
        token,
        full: m.full,
        context: m.context.iter().map(|&v| share(v, m.full)).collect(),
        shuffle_kept: mean,
        shuffle_spread: var.sqrt(),
        reads: reads(m.full, &m.context),
        original: m.original.clone(),
        shuffle: m.shuffle.clone(),
    }
}

/// Of `readings`, the share in each class (`Reads::CLASSES`), silent ones left out; and
/// the share that keeps at least `REACH` of its mean when shuffled.
pub fn shares<'a>(readings: impl Iterator<Item = &'a Reading>) -> ([f32; 3], f32, usize) {
    let live: Vec<&Reading> = readings.filter(|r| r.reads != Reads::Silent).collect();
    let n = live.len().max(1) as f32;
    let of = |c: Reads| live.iter().filter(|r| r.reads == c).count() as f32 / n;
    let kept = live.iter().filter(|r| r.shuffle_kept >= REACH).count() as f32 / n;
    ([of(Reads::Token), of(Reads::LocalContext), of(Reads::LongContext)], kept, live.len())
}
