//! The one key table. Every binding is one line: its keys, how they are written, the
//! action, what it does (the help overlay), and the word each view's hint line shows.
//! `keymap`, the help overlay and the hint lines are all read from it, so adding a key is
//! one line here and docs/explorer.md's key table is checked against it (tests/it/docs.rs).

use crate::ui::action::{Action, Mode};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Which keys a binding answers to.
pub enum Keys {
    Codes(&'static [KeyCode]),
    /// Ctrl + this letter.
    Ctrl(char),
    /// `1`-`9`: `Action::Layer(n - 1)`.
    Digits,
    /// Not a key: listed in the help only (the mouse).
    Help,
}

pub struct Binding {
    pub keys: Keys,
    /// The keys as the help overlay writes them.
    pub label: &'static str,
    pub action: Action,
    pub help: &'static str,
    /// The hint line's word in each view that shows this binding there.
    pub hints: &'static [(Mode, &'static str)],
}

use KeyCode::*;
use Mode::{Attribute, Card, Context, Findings, Graph, Main, Overview, Search, Steer, Tokens};

pub static KEYS: &[Binding] = &[
    Binding { keys: Keys::Codes(&[Char('?')]), label: "?", action: Action::ToggleHelp, help: "this help", hints: &[(Main, "? help")] },
    Binding {
        keys: Keys::Codes(&[Right, Char('l'), Char(']')]),
        label: "→  l  ]",
        action: Action::NextLayer,
        help: "next SAE (tab); graph: the next node of the layer",
        hints: &[(Main, "←/→ SAE"), (Tokens, "←/→ SAE"), (Overview, "←/→ SAE"), (Graph, "←/→ node")],
    },
    Binding { keys: Keys::Codes(&[Left, Char('h'), Char('[')]), label: "←  h  [", action: Action::PrevLayer, help: "previous SAE (tab)", hints: &[] },
    Binding { keys: Keys::Digits, label: "1-9", action: Action::Layer(0), help: "jump to the n-th SAE tab", hints: &[] },
    Binding {
        keys: Keys::Codes(&[Up, Char('k')]),
        label: "↑  k",
        action: Action::Up,
        help: "move up in the focused pane; scroll a view; graph: the layer above",
        hints: &[(Card, "↑/↓ move"), (Tokens, "↑/↓ text"), (Findings, "↑/↓ scroll"), (Overview, "↑/↓ feature"), (Graph, "↑/↓ layer")],
    },
    Binding { keys: Keys::Codes(&[Down, Char('j')]), label: "↓  j", action: Action::Down, help: "move down; scroll a view", hints: &[] },
    Binding { keys: Keys::Codes(&[PageUp]), label: "PgUp", action: Action::PageUp, help: "a page up", hints: &[] },
    Binding { keys: Keys::Codes(&[PageDown]), label: "PgDn", action: Action::PageDown, help: "a page down", hints: &[] },
    Binding { keys: Keys::Codes(&[Home]), label: "Home", action: Action::Home, help: "first row", hints: &[] },
    Binding { keys: Keys::Codes(&[End, Char('G')]), label: "End  G", action: Action::End, help: "last row", hints: &[] },
    Binding { keys: Keys::Codes(&[Tab]), label: "Tab", action: Action::NextPane, help: "focus the next pane", hints: &[] },
    Binding { keys: Keys::Codes(&[BackTab]), label: "Shift-Tab", action: Action::PrevPane, help: "focus the previous pane", hints: &[] },
    Binding {
        keys: Keys::Codes(&[Char(' ')]),
        label: "Space",
        action: Action::ToggleMark,
        help: "mark a category for side-by-side comparison; graph: the node into or out of the group",
        hints: &[(Graph, "Space group")],
    },
    Binding {
        keys: Keys::Codes(&[Enter]),
        label: "Enter",
        action: Action::FocusCategory,
        help: "focus a category (clears marks) / open a feature's card / a card's context whole",
        hints: &[
            (Main, "Enter card"),
            (Tokens, "Enter card"),
            (Search, "Enter card"),
            (Steer, "Enter run"),
            (Attribute, "Enter card"),
            (Overview, "Enter card"),
            (Card, "Enter context"),
            (Graph, "Enter card"),
        ],
    },
    Binding {
        keys: Keys::Codes(&[Char('t')]),
        label: "t",
        action: Action::Tokens,
        help: "token view: the feature in each text, token by token",
        hints: &[(Main, "t tokens"), (Card, "t tokens")],
    },
    Binding {
        keys: Keys::Codes(&[Char('n')]),
        label: "n",
        action: Action::NextFeature,
        help: "token view: next feature; graph: along the strongest edge out",
        hints: &[(Tokens, "n/p feature"), (Graph, "n/p path")],
    },
    Binding {
        keys: Keys::Codes(&[Char('p')]),
        label: "p",
        action: Action::PrevFeature,
        help: "token view: previous feature; graph: along the strongest edge in",
        hints: &[],
    },
    Binding {
        keys: Keys::Codes(&[Char('<')]),
        label: "<",
        action: Action::TokenLeft,
        help: "token view: the token cursor left (a explains the token after it); graph: lower the node threshold",
        hints: &[(Tokens, "</> token"), (Graph, "</> threshold")],
    },
    Binding {
        keys: Keys::Codes(&[Char('>')]),
        label: ">",
        action: Action::TokenRight,
        help: "token view: the token cursor right; graph: raise the node threshold",
        hints: &[],
    },
    Binding {
        keys: Keys::Codes(&[Char('v')]),
        label: "v",
        action: Action::ToggleValues,
        help: "token view, card contexts: show every token's value",
        hints: &[(Tokens, "v values"), (Card, "v values"), (Context, "v values")],
    },
    Binding {
        keys: Keys::Codes(&[Char('o')]),
        label: "o",
        action: Action::OpenUrl,
        help: "card: open the Neuronpedia page (the URL is shown too)",
        hints: &[(Card, "o open")],
    },
    Binding {
        keys: Keys::Codes(&[Char('i')]),
        label: "i",
        action: Action::InputText,
        help: "your text as a category; steer/attribute/graph: the prompt",
        hints: &[(Main, "i text"), (Steer, "i prompt"), (Attribute, "i prompt"), (Graph, "i prompt")],
    },
    Binding {
        keys: Keys::Codes(&[Char('/')]),
        label: "/",
        action: Action::Search,
        help: "search features by label (--labels) or by the token they peak on (--corpus)",
        hints: &[(Search, "/ edit")],
    },
    Binding {
        keys: Keys::Codes(&[Char('f')]),
        label: "f",
        action: Action::Findings,
        help: "the GPT-2 small SAE study's findings on this data",
        hints: &[(Main, "f findings")],
    },
    Binding {
        keys: Keys::Codes(&[Char('O')]),
        label: "O",
        action: Action::Overview,
        help: "overview of the SAE on view over the corpus (needs --corpus)",
        hints: &[(Main, "O overview")],
    },
    Binding {
        keys: Keys::Codes(&[Char('S')]),
        label: "S",
        action: Action::Sort,
        help: "overview: sort by max, frac_nonzero, label or id",
        hints: &[(Overview, "S sort")],
    },
    Binding {
        keys: Keys::Codes(&[Char('s')]),
        label: "s",
        action: Action::Steer,
        help: "card: steer generation with this feature",
        hints: &[(Card, "s steer")],
    },
    Binding {
        keys: Keys::Codes(&[Char('a')]),
        label: "a",
        action: Action::Attribute,
        help: "why the next token? (token view: after the cursor, or the text)",
        hints: &[(Main, "a attribute"), (Tokens, "a why next")],
    },
    Binding {
        keys: Keys::Codes(&[Char('T')]),
        label: "T",
        action: Action::Target,
        help: "attribute: explain another next token",
        hints: &[(Attribute, "T target")],
    },
    Binding {
        keys: Keys::Codes(&[Char('g')]),
        label: "g",
        action: Action::Graph,
        help: "attribution graph of a prompt over the transcoders (--transcoders); token view: its text to the cursor",
        hints: &[(Tokens, "g graph"), (Attribute, "g graph")],
    },
    Binding {
        keys: Keys::Codes(&[Char('+'), Char('=')]),
        label: "+",
        action: Action::StrengthUp,
        help: "steer: raise the selected feature's strength by 5; graph: start a new group",
        hints: &[(Steer, "+/- strength"), (Graph, "+ new group")],
    },
    Binding { keys: Keys::Codes(&[Char('-')]), label: "-", action: Action::StrengthDown, help: "steer: lower it by 5", hints: &[] },
    Binding {
        keys: Keys::Codes(&[Char('x')]),
        label: "x",
        action: Action::Remove,
        help: "steer: drop the selected feature; graph: switch the group's features (or the node) off",
        hints: &[(Steer, "x drop"), (Graph, "x ablate")],
    },
    Binding {
        keys: Keys::Codes(&[Char('m')]),
        label: "m",
        action: Action::ToggleMode,
        help: "steer: add the direction or clamp the activation",
        hints: &[(Steer, "m add/clamp")],
    },
    Binding {
        keys: Keys::Codes(&[Char('e')]),
        label: "e",
        action: Action::Export,
        help: "export the current view to CSV",
        hints: &[
            (Card, "e export"),
            (Tokens, "e export"),
            (Findings, "e export"),
            (Search, "e export"),
            (Steer, "e export"),
            (Attribute, "e export"),
            (Overview, "e export"),
            (Context, "e export"),
            (Graph, "e export"),
        ],
    },
    Binding {
        keys: Keys::Help,
        label: "click  wheel",
        action: Action::ToggleHelp,
        help: "select what is under the pointer / scroll the pane under it",
        hints: &[],
    },
    Binding {
        keys: Keys::Codes(&[Esc]),
        label: "Esc",
        action: Action::Back,
        help: "close help, input or view; quit from the main panes",
        hints: &[
            (Card, "Esc back"),
            (Tokens, "Esc back"),
            (Findings, "Esc back"),
            (Search, "Esc back"),
            (Steer, "Esc back"),
            (Attribute, "Esc back"),
            (Overview, "Esc back"),
            (Context, "Esc back"),
            (Graph, "Esc back"),
        ],
    },
    Binding { keys: Keys::Codes(&[Char('q')]), label: "q", action: Action::Quit, help: "quit", hints: &[(Main, "q quit")] },
    Binding { keys: Keys::Ctrl('c'), label: "Ctrl-C", action: Action::Quit, help: "quit, also while typing", hints: &[] },
];

/// The action of a key press. While the input line is open (`typing`), keys are text,
/// and only Enter, Esc, Backspace and Ctrl-C act.
pub fn keymap(k: KeyEvent, typing: bool) -> Option<Action> {
    if k.kind != KeyEventKind::Press {
        return None;
    }
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    let bound = |b: &Binding| match (&b.keys, k.code) {
        (Keys::Ctrl(c), Char(x)) => ctrl && x.eq_ignore_ascii_case(c),
        (Keys::Codes(codes), code) => !ctrl && codes.contains(&code),
        (Keys::Digits, Char('1'..='9')) => !ctrl,
        _ => false,
    };
    if typing {
        return match k.code {
            _ if KEYS.iter().any(|b| matches!(b.keys, Keys::Ctrl(_)) && bound(b)) => Some(Action::Quit),
            Char(c) => Some(Action::Type(c)),
            Tab => Some(Action::Type('\t')),
            Backspace => Some(Action::Erase),
            Enter => Some(Action::Submit),
            Esc => Some(Action::Back),
            _ => None,
        };
    }
    let b = KEYS.iter().find(|b| bound(b))?;
    Some(match (&b.keys, k.code) {
        (Keys::Digits, Char(c)) => Action::Layer(c as usize - '1' as usize),
        _ => b.action.clone(),
    })
}

/// The hint line of a view, in table order.
pub fn hints(mode: Mode, sep: &str) -> String {
    hint_words(mode).join(sep)
}

fn hint_words(mode: Mode) -> Vec<&'static str> {
    KEYS.iter().flat_map(|b| b.hints.iter()).filter(|(m, _)| *m == mode).map(|(_, h)| *h).collect()
}

/// What stands for the hints left out of a line too narrow for all of them.
pub const MORE: &str = "? more";

/// The hint line of a view in at most `width` columns, whole hints only: a title or a tab
/// bar never ends in half a word. The last hint (how to leave) stays; the ones before it
/// drop from the end, and `? more` says the help lists them (unless `? help` stays).
pub fn hints_within(mode: Mode, sep: &str, width: usize) -> String {
    let words = hint_words(mode);
    let len = |w: &[&str]| w.iter().map(|h| h.chars().count()).sum::<usize>() + sep.chars().count() * w.len().saturating_sub(1);
    if len(&words) <= width {
        return words.join(sep);
    }
    let Some((&last, rest)) = words.split_last() else { return String::new() };
    let mut kept: Vec<&str> = rest.to_vec();
    // A line that keeps "? help" already says where the rest are.
    let more = |kept: &[&str]| if kept.iter().any(|h| h.starts_with("? ")) { None } else { Some(MORE) };
    loop {
        let line: Vec<&str> = kept.iter().copied().chain(more(&kept)).chain([last]).collect();
        if len(&line) <= width {
            return line.join(sep);
        }
        if kept.pop().is_none() {
            // Not even the way out and `? more` fit: as many whole hints as do.
            let mut out: Vec<&str> = Vec::new();
            for h in [last, MORE] {
                if len(&[out.as_slice(), &[h]].concat()) <= width {
                    out.push(h);
                }
            }
            return out.join(sep);
        }
    }
}

/// The key table as docs/explorer.md's markdown table: one row per binding, its keys (each in
/// code) and what it does. tests/it/docs.rs checks that docs/explorer.md holds exactly this,
/// and `scripts/docs-tables` writes it there.
pub fn markdown() -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let code = |k: &str| {
        let fence = if k.contains('`') { "``" } else { "`" };
        let pad = if k.starts_with('`') || k.ends_with('`') { " " } else { "" };
        format!("{fence}{pad}{}{pad}{fence}", cell(k))
    };
    let mut out = String::from("| key | what it does |\n|---|---|\n");
    for b in KEYS {
        let keys: Vec<String> = b.label.split("  ").map(str::trim).filter(|k| !k.is_empty()).map(code).collect();
        out.push_str(&format!("| {} | {} |\n", keys.join(" "), cell(b.help)));
    }
    out
}
