//! Steering from the explorer: the steering set (features added from cards with `s`, each
//! with its strength), the prompt, and once the model thread has run them, the default and
//! steered continuations side by side with each step's top token and KL.

use super::{distance, step, ScreenStep};
use crate::interp::steer::{Edit, Steered};
use crate::ui::action::{Action, Effect, InputKind, WorkerRequest};
use crate::ui::context::Context;
use crate::ui::panes;
use ratatui::layout::Rect;
use ratatui::Frame;

/// Tokens each run generates.
pub const TOKENS: usize = 24;
/// What `+` and `-` change a strength by.
const STRENGTH_STEP: f64 = 5.0;
/// A feature's strength when `s` adds it.
pub const DEFAULT_STRENGTH: f64 = 20.0;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SteerScreen {
    /// Selected feature of the steering set.
    pub row: usize,
    pub prompt: String,
    pub result: Option<Box<Steered>>,
    pub running: bool,
    pub failed: Option<String>,
}

impl SteerScreen {
    /// Asks the model thread for both continuations.
    pub fn run(&mut self, ctx: &mut Context, out: &mut Vec<Effect>) {
        if ctx.steering.is_empty() {
            ctx.message = Some("the steering set is empty: open a feature's card and press s".into());
            return;
        }
        self.running = true;
        self.failed = None;
        out.push(Effect::Worker(WorkerRequest::Steer { prompt: self.prompt.clone(), features: ctx.steering.clone(), mode: ctx.steer_mode, tokens: TOKENS }));
    }

    pub fn update(&mut self, action: &Action, ctx: &mut Context, out: &mut Vec<Effect>) -> ScreenStep {
        if let Some(by) = distance(action) {
            self.row = step(self.row, by, ctx.steering.len());
            return ScreenStep::Done;
        }
        let strength = |ctx: &mut Context, row: usize, by: f64| {
            if let Some(f) = ctx.steering.get_mut(row) {
                f.strength += by;
            }
        };
        match action {
            Action::StrengthUp => strength(ctx, self.row, STRENGTH_STEP),
            Action::StrengthDown => strength(ctx, self.row, -STRENGTH_STEP),
            Action::Remove if self.row < ctx.steering.len() => {
                ctx.steering.remove(self.row);
                self.row = self.row.min(ctx.steering.len().saturating_sub(1));
            }
            Action::ToggleMode => ctx.steer_mode = if ctx.steer_mode == Edit::Add { Edit::Clamp } else { Edit::Add },
            Action::InputText => return ScreenStep::Input(InputKind::SteerPrompt, self.prompt.clone()),
            Action::OpenCard | Action::FocusCategory if self.prompt.trim().is_empty() => return ScreenStep::Input(InputKind::SteerPrompt, String::new()),
            Action::OpenCard | Action::FocusCategory => self.run(ctx, out),
            _ => return ScreenStep::Pass,
        }
        ScreenStep::Done
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, ctx: &Context) {
        panes::steer::draw(f, self, ctx, area);
    }
}
