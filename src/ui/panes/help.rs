//! The help overlay: every key.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

pub const KEYS: &[(&str, &str)] = &[
    ("←/→  h/l  [/]", "previous / next layer"),
    ("1-9", "jump to the n-th layer tab"),
    ("↑/↓  k/j", "move in the focused pane"),
    ("PgUp/PgDn  g/G", "page / first / last row"),
    ("Tab / Shift-Tab", "focus the next / previous pane"),
    ("Space", "mark a category for side-by-side comparison"),
    ("Enter", "focus a category (clears marks) / open a feature's card"),
    ("t", "token view: the feature in each text, token by token"),
    ("n / p  v", "token view: next / previous feature, show values"),
    ("o", "card: open the Neuronpedia page (the URL is shown too)"),
    ("i", "run a text of your own as a new category"),
    ("/", "search features by label (needs --labels FILE)"),
    ("f", "the seed's findings checked on this data"),
    ("e", "export the current view to CSV"),
    ("mouse click", "focus a pane, select a row or a layer tab"),
    ("?", "this help"),
    ("Esc", "close help, input or view; quit from the main panes"),
    ("q  Ctrl-C", "quit"),
];

pub fn draw(f: &mut Frame, area: Rect) {
    let [area] = Layout::horizontal([Constraint::Length(76)]).flex(Flex::Center).areas(area);
    let [area] = Layout::vertical([Constraint::Length(KEYS.len() as u16 + 4)]).flex(Flex::Center).areas(area);
    let text: Vec<String> = KEYS.iter().map(|(k, what)| format!(" {k:<17} {what}")).collect();
    f.render_widget(Clear, area);
    f.render_widget(Paragraph::new(text.join("\n")).block(Block::default().borders(Borders::ALL).title(" Keys (? or Esc to close) ")), area);
}
