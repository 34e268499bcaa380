//! Draws the full-screen client, top to bottom: the room bar (joined rooms
//! with their numbers and unread counts), the topic of the room on view, its
//! messages (oldest at the top, then our pending ones) with the member list
//! on the right when the terminal has `MEMBERS_MIN_WIDTH` columns, a status
//! line, an input box. Only the visible window of messages is turned into
//! widgets.

use super::app::App;
use super::room::{Item, Line as RoomLine, Pending, RoomView};
use crate::client::format::{one_line, sender, time_of_day};
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

/// Narrower terminals leave the member list out (messages need the room).
pub const MEMBERS_MIN_WIDTH: u16 = 100;
const MEMBERS_WIDTH: u16 = 24;
/// Rows that are not message lines: bar, topic, the messages' borders,
/// status, the input box.
const CHROME_ROWS: u16 = 1 + 1 + 2 + 1 + 3;

/// Message lines shown in a terminal `height` rows tall.
pub fn message_lines(height: u16) -> usize {
    height.saturating_sub(CHROME_ROWS).max(1) as usize
}

pub fn draw(f: &mut Frame, app: &App) {
    let [bar, topic, main, status, input] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(3),
    ])
    .areas(f.area());
    f.render_widget(Paragraph::new(room_bar(app)), bar);
    f.render_widget(
        Paragraph::new(topic_text(app)).style(Style::new().add_modifier(Modifier::BOLD)),
        topic,
    );
    let (msgs, members) = if main.width >= MEMBERS_MIN_WIDTH {
        let [m, w] = Layout::horizontal([Constraint::Min(20), Constraint::Length(MEMBERS_WIDTH)])
            .areas(main);
        (m, Some(w))
    } else {
        (main, None)
    };
    draw_messages(f, app, msgs);
    if let (Some(area), Some(room)) = (members, app.room()) {
        draw_members(f, room, area);
    }
    f.render_widget(
        Paragraph::new(status_text(app)).style(Style::new().add_modifier(Modifier::REVERSED)),
        status,
    );
    draw_input(f, app, input);
}

/// ` [1 #general]  2 #random (3) ` — the room on view in brackets.
fn room_bar(app: &App) -> Line<'static> {
    let mut spans = Vec::new();
    for (i, r) in app.rooms.iter().enumerate() {
        let unread = if r.unread > 0 {
            format!(" ({})", r.unread)
        } else {
            String::new()
        };
        if i == app.current {
            spans.push(Span::styled(
                format!("[{} #{}{unread}]", i + 1, r.name),
                Style::new().bold().fg(Color::Black).bg(Color::Cyan),
            ));
        } else {
            let style = if r.unread > 0 {
                Style::new().bold().fg(Color::Yellow)
            } else {
                Style::new()
            };
            spans.push(Span::styled(
                format!(" {} #{}{unread} ", i + 1, r.name),
                style,
            ));
        }
        spans.push(Span::raw(" "));
    }
    if app.rooms.is_empty() {
        spans.push(Span::raw("no rooms: /join #room"));
    }
    Line::from(spans)
}

fn topic_text(app: &App) -> String {
    match app.room() {
        Some(r) if !r.topic.is_empty() => format!("topic: {}", one_line(&r.topic)),
        Some(_) => "topic: (none; /topic TEXT sets one)".to_string(),
        None => String::new(),
    }
}

fn draw_messages(f: &mut Frame, app: &App, area: Rect) {
    let title = match app.room() {
        Some(r) => format!(" #{} · you are {} · times UTC ", r.name, app.me),
        None => format!(" chorus · you are {} ", app.me),
    };
    let block = Block::bordered().title(title);
    let height = block.inner(area).height as usize;
    let Some(room) = app.room() else {
        f.render_widget(Paragraph::new("").block(block), area);
        return;
    };
    // The room's lines under one line saying what is above them (the
    // beginning, or how to load more): PageUp scrolls up to it.
    let total = room.len() + 1;
    let end = total.saturating_sub(room.scroll);
    let start = end.saturating_sub(height);
    let mut lines: Vec<Line> = Vec::with_capacity(height);
    if start == 0 {
        lines.push(top_line(room));
    }
    lines.extend(
        room.lines(start.saturating_sub(1), end.saturating_sub(1))
            .into_iter()
            .map(|l| draw_line(&app.me, l)),
    );
    f.render_widget(Paragraph::new(lines).block(block), area);
}

/// What sits above the oldest line loaded.
fn top_line(room: &RoomView) -> Line<'static> {
    let text = if !room.loaded {
        "loading…"
    } else if room.at_start() {
        "— the beginning of the room —"
    } else if room.loading_older {
        "loading older messages…"
    } else if room.full {
        "— scrollback limit reached —"
    } else {
        "PageUp loads older messages"
    };
    Line::styled(text, Style::new().dim())
}

fn draw_line(me: &str, l: RoomLine) -> Line<'static> {
    match l {
        RoomLine::Item(Item::Chat { d, own }) => {
            let who = Style::new()
                .bold()
                .fg(if *own { Color::Green } else { Color::Cyan });
            let mut spans = vec![
                Span::styled(
                    format!("#{:<5}", d.room_seq),
                    Style::new().fg(Color::Yellow),
                ),
                Span::styled(format!("{} ", time_of_day(d.ts_ms)), Style::new().dim()),
                Span::styled(sender(d), who),
                Span::raw(": "),
                Span::raw(one_line(&d.payload)),
            ];
            if *own {
                spans.push(Span::styled(" ✓", Style::new().fg(Color::Green)));
            }
            Line::from(spans)
        }
        RoomLine::Item(Item::Event { text, ts_ms }) => Line::from(vec![
            Span::raw("*     "),
            Span::styled(format!("{} ", time_of_day(*ts_ms)), Style::new().dim()),
            Span::styled(one_line(text), Style::new().fg(Color::Magenta)),
        ]),
        RoomLine::Item(Item::Note(text)) => {
            Line::styled(format!("-- {}", one_line(text)), Style::new().dim())
        }
        RoomLine::Pending(p) => pending_line(me, p),
    }
}

fn pending_line(me: &str, p: &Pending) -> Line<'static> {
    let mark = match p.seq_no {
        Some(_) => " ✓",
        None => " … sending",
    };
    Line::from(vec![
        Span::styled("#…    ", Style::new().fg(Color::Yellow)),
        Span::styled("--:--:-- ", Style::new().dim()),
        Span::styled(me.to_string(), Style::new().bold().fg(Color::Green)),
        Span::raw(": "),
        Span::raw(one_line(&p.payload)),
        Span::styled(mark, Style::new().dim()),
    ])
}

fn draw_members(f: &mut Frame, room: &RoomView, area: Rect) {
    let online = room.members.iter().filter(|m| m.online).count();
    let more = if room.members_truncated { "+" } else { "" };
    let block = Block::bordered().title(format!(" members {online}/{}{more} ", room.members.len()));
    let height = block.inner(area).height as usize;
    let lines: Vec<Line> = room
        .members
        .iter()
        .take(height)
        .map(|m| {
            if m.online {
                Line::styled(format!("● {}", m.user), Style::new().fg(Color::Green))
            } else {
                Line::styled(format!("○ {}", m.user), Style::new().dim())
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_input(f: &mut Frame, app: &App, area: Rect) {
    let box_ = Block::bordered()
        .title(" message or /command · Enter send · /help · Esc quit · PgUp/PgDn scroll ");
    let width = box_.inner(area).width.saturating_sub(1) as usize;
    let chars = app.input.chars().count();
    // Show the tail of a long input so the cursor stays visible.
    let visible: String = app
        .input
        .chars()
        .skip(chars.saturating_sub(width))
        .collect();
    let cursor_x = area.x + 1 + visible.chars().count() as u16;
    f.render_widget(Paragraph::new(visible).block(box_), area);
    f.set_cursor_position(Position::new(cursor_x, area.y + 1));
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
