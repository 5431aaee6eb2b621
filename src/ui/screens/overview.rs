//! One SAE over the corpus: its density histogram, dead features and L0, and every
//! feature in a table sortable by max activation, firing rate or label, to browse and open
//! cards from. The tab keys switch SAEs; the rows are the index's, never recomputed.

use super::{distance, step, ScreenStep};
use crate::dashboard::Index;
use crate::ui::action::{Action, Effect};
use crate::ui::context::Context;
use crate::ui::hits::{HitMap, Target};
use crate::ui::panes;
use ratatui::layout::Rect;
use ratatui::Frame;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    Max,
    Density,
    Label,
    Id,
}

impl Sort {
    pub fn next(self) -> Self {
        match self {
            Sort::Max => Sort::Density,
            Sort::Density => Sort::Label,
            Sort::Label => Sort::Id,
            Sort::Id => Sort::Max,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Sort::Max => "max activation",
            Sort::Density => "frac_nonzero",
            Sort::Label => "label",
            Sort::Id => "feature id",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverviewScreen {
    pub sort: Sort,
    pub row: usize,
    pub scroll: crate::ui::offset::Offset,
}

/// A feature's row: id, max, frac_nonzero, mean when firing, the token its top context
/// peaks on, label.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRow {
    pub feature: u32,
    pub max: f32,
    pub frac: f64,
    pub mean: f64,
    pub peak_token: Option<String>,
    pub label: Option<String>,
}

impl OverviewScreen {
    /// Every feature of the SAE on view, in the chosen order (ties by id).
    pub fn rows(&self, ctx: &Context, index: &Index) -> Vec<FeatureRow> {
        let layer = ctx.sae();
        let Some(s) = index.of(layer) else { return Vec::new() };
        let mut rows: Vec<FeatureRow> = (0..s.d_sae)
            .map(|f| FeatureRow {
                feature: f as u32,
                max: s.max[f],
                frac: s.frac_nonzero(f),
                mean: s.mean_when_firing(f),
                peak_token: s.top[f].first().and_then(|h| index.token_at(h)).map(String::from),
                label: ctx.labels.get(layer, f as u32).map(String::from),
            })
            .collect();
        match self.sort {
            Sort::Max => rows.sort_by(|a, b| b.max.total_cmp(&a.max).then(a.feature.cmp(&b.feature))),
            Sort::Density => rows.sort_by(|a, b| b.frac.total_cmp(&a.frac).then(a.feature.cmp(&b.feature))),
            Sort::Label => rows.sort_by(|a, b| match (&a.label, &b.label) {
                (Some(x), Some(y)) => x.to_lowercase().cmp(&y.to_lowercase()).then(a.feature.cmp(&b.feature)),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => a.feature.cmp(&b.feature),
            }),
            Sort::Id => {}
        }
        rows
    }

    fn len(&self, ctx: &Context) -> usize {
        ctx.index.as_ref().and_then(|i| i.of(ctx.sae())).map_or(0, |s| s.d_sae)
    }

    pub fn update(&mut self, action: &Action, ctx: &mut Context, out: &mut Vec<Effect>) -> ScreenStep {
        if let Some(by) = distance(action) {
            self.row = step(self.row, by, self.len(ctx));
            return ScreenStep::Done;
        }
        match action {
            Action::Sort => {
                self.sort = self.sort.next();
                self.row = 0;
            }
            Action::OpenCard | Action::FocusCategory => {
                let Some(index) = ctx.index.clone() else { return ScreenStep::Done };
                if let Some(r) = self.rows(ctx, &index).get(self.row) {
                    return super::card::open(ctx, ctx.sae(), r.feature, out);
                }
            }
            _ => return ScreenStep::Pass,
        }
        ScreenStep::Done
    }

    pub fn click(&mut self, target: Target) {
        if let Target::OverviewRow(i) = target {
            self.row = i;
        }
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, ctx: &Context, hits: &HitMap) {
        panes::overview::draw(f, self, ctx, hits, area);
    }
}
