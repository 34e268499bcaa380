//! Draws the full-screen client: the room's messages (oldest at the top, the
//! newest at the bottom, then our pending ones), a status line, an input box.
//! Only the visible window of messages is turned into widgets.

use super::app::{App, Pending, Shown};
use crate::client::format::{one_line, sender, time_of_day};
use ratatui::layout::{Constraint, Layout, Position};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

pub fn draw(f: &mut Frame, app: &App) {
    let [msgs, status, input] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(3),
    ])
    .areas(f.area());

    let title = format!(
        " chorus · room {} · you are {} · times UTC ",
        app.room, app.me
    );
    let block = Block::bordered().title(title);
    let height = block.inner(msgs).height as usize;
    let total = app.shown.len() + app.pending.len();
    let end = total.saturating_sub(app.scroll);
    let start = end.saturating_sub(height);
    let lines: Vec<Line> = (start..end).map(|i| line_at(app, i)).collect();
    f.render_widget(Paragraph::new(lines).block(block), msgs);

    f.render_widget(
        Paragraph::new(status_text(app)).style(Style::new().add_modifier(Modifier::REVERSED)),
        status,
    );

    let box_ = Block::bordered().title(" message · Enter send · Esc quit · PgUp/PgDn scroll ");
    let width = box_.inner(input).width.saturating_sub(1) as usize;
    let chars = app.input.chars().count();
    // Show the tail of a long input so the cursor stays visible.
    let visible: String = app
        .input
        .chars()
        .skip(chars.saturating_sub(width))
        .collect();
    let cursor_x = input.x + 1 + visible.chars().count() as u16;
    f.render_widget(Paragraph::new(visible).block(box_), input);
    f.set_cursor_position(Position::new(cursor_x, input.y + 1));
}

fn line_at(app: &App, i: usize) -> Line<'static> {
    match app.shown.get(i) {
        Some(s) => shown_line(s),
        None => pending_line(&app.me, &app.pending[i - app.shown.len()]),
    }
}

fn shown_line(s: &Shown) -> Line<'static> {
    let who = Style::new()
        .bold()
        .fg(if s.own { Color::Green } else { Color::Cyan });
    let mut spans = vec![
        Span::styled(
            format!("#{:<5}", s.d.seq_no),
            Style::new().fg(Color::Yellow),
        ),
        Span::styled(format!("{} ", time_of_day(s.d.ts_ms)), Style::new().dim()),
        Span::styled(sender(&s.d), who),
        Span::raw(": "),
        Span::raw(one_line(&s.d.payload)),
    ];
    if s.own {
        spans.push(Span::styled(" ✓", Style::new().fg(Color::Green)));
    }
    Line::from(spans)
}

fn pending_line(me: &str, p: &Pending) -> Line<'static> {
    let (seq, mark) = match p.seq_no {
        Some(n) => (format!("#{n:<5}"), " ✓"),
        None => ("#…    ".to_string(), " … sending"),
    };
    Line::from(vec![
        Span::styled(seq, Style::new().fg(Color::Yellow)),
        Span::styled("--:--:-- ", Style::new().dim()),
        Span::styled(me.to_string(), Style::new().bold().fg(Color::Green)),
        Span::raw(": "),
        Span::raw(one_line(&p.payload)),
        Span::styled(mark, Style::new().dim()),
    ])
}

fn status_text(app: &App) -> String {
    let node = match &app.connected {
        Some(a) => format!("● node {a}"),
        None => "○ not connected".to_string(),
    };
    let (leader, term) = match &app.status {
        Some(st) => {
            let leader = match (st.leader, &st.leader_addr) {
                (Some(id), Some(addr)) => format!("leader n{id} ({addr})"),
                (Some(id), None) => format!("leader n{id}"),
                _ => "no leader".to_string(),
            };
            (leader, format!("term {}", st.term))
        }
        None => ("leader ?".to_string(), "term ?".to_string()),
    };
    format!(
        " {node} │ {leader} │ {term} │ unacked {} │ {}",
        app.unacked, app.notice
    )
}
