//! Features found by label, or by the token their top corpus contexts peak on: the query
//! (edited on the input line), the hits, the selected one.

use super::{distance, step, ScreenStep};
use crate::ui::action::{Action, Effect};
use crate::ui::context::Context;
use crate::ui::hits::{HitMap, Target};
use crate::ui::panes;
use ratatui::layout::Rect;
use ratatui::Frame;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchScreen {
    pub query: String,
    pub row: usize,
    pub scroll: crate::ui::offset::Offset,
}

impl SearchScreen {
    /// Features whose label matches the query (by SAE, then id), then features whose
    /// top contexts peak on the query as a token ("def" finds those peaking on " def"),
    /// most such contexts first.
    pub fn hits(&self, ctx: &Context) -> Vec<(crate::sae::key::SaeKey, u32, String)> {
        let mut out: Vec<(crate::sae::key::SaeKey, u32, String)> = ctx.labels.search(&self.query).into_iter().map(|(l, f, t)| (l, f, t.to_string())).collect();
        let Some(index) = &ctx.index else { return out };
        let mut peaking: Vec<(usize, crate::sae::key::SaeKey, u32)> =
            ctx.saes.iter().flat_map(|&layer| index.features_peaking_on(layer, &self.query).into_iter().map(move |(f, n)| (n, layer, f))).collect();
        // Most such contexts first, across layers (stable: within a count, by layer then max).
        peaking.sort_by_key(|&(n, _, _)| std::cmp::Reverse(n));
        for (n, layer, f) in peaking {
            if !out.iter().any(|&(l, g, _)| (l, g) == (layer, f)) {
                let label = ctx.labels.get(layer, f).map(|l| format!(" · {l}")).unwrap_or_default();
                out.push((layer, f, format!("{n} top contexts peak on {:?}{label}", self.query.trim())));
            }
        }
        out
    }

    pub fn update(&mut self, action: &Action, ctx: &mut Context, out: &mut Vec<Effect>) -> ScreenStep {
        if let Some(by) = distance(action) {
            self.row = step(self.row, by, self.hits(ctx).len());
            return ScreenStep::Done;
        }
        match action {
            Action::OpenCard | Action::FocusCategory => {
                if let Some(&(layer, f, _)) = self.hits(ctx).get(self.row) {
                    return super::card::open(ctx, layer, f, out);
                }
                ScreenStep::Done
            }
            _ => ScreenStep::Pass,
        }
    }

    pub fn click(&mut self, target: Target) {
        if let Target::SearchHit(i) = target {
            self.row = i;
        }
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, ctx: &Context, hits: &HitMap) {
        panes::search::draw(f, self, ctx, hits, area);
    }
}
