//! The drawn seat map of an event (`GET /api/v1/events/:id/seatmap.svg`): an SVG picture of
//! the hall that a front end can inline and make clickable.
//!
//! - The stage: the seat map's `stage`, or a bar above the seats.
//! - Every seat a circle at its position (see [`super::inventory`] on positions), coloured by
//!   its price category ([`PALETTE`], by the categories' order in the seat map). Free seats
//!   are filled with their colour; held seats (someone's reservation) are hatched grey with a
//!   grey outline; sold seats are dark grey and crossed.
//! - Each seat is a `<g class="seat seat-<state> cat-<category>" data-seat-id="<id>"
//!   data-state="free|held|sold" data-category="<category>">` holding a `<title>` ("Партер,
//!   ряд 3, место 5 — 3500.00 ₽"), the circle and the seat's number.
//! - A legend: each category's colour, name and price, then the three states.
//!
//! The states are read the way the seat list reads them ([`inventory::seat_states`]). Every
//! text that comes from the seat map (names, labels, ids) is XML-escaped.

use std::fmt::Write as _;

use super::holds::HoldState;
use super::inventory::{self, Event, Located, Stage};
use crate::App;
use crate::error::ApiResult;
use crate::money;

/// Category colours, by the categories' order in the seat map (repeating after ten).
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f",
    "#17becf",
];

const SEAT_RADIUS: u32 = 11;
const MARGIN: i64 = 30;
const LEGEND_LINE: i64 = 26;

/// What a seat looks like now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatState {
    Free,
    Held,
    Sold,
}

impl SeatState {
    pub fn as_str(self) -> &'static str {
        match self {
            SeatState::Free => "free",
            SeatState::Held => "held",
            SeatState::Sold => "sold",
        }
    }

    fn of(hold: Option<HoldState>) -> Self {
        match hold {
            None => SeatState::Free,
            Some(HoldState::Held) => SeatState::Held,
            Some(HoldState::Sold) => SeatState::Sold,
        }
    }
}

/// The event's seat map as an SVG document (404 for an unknown event).
pub async fn svg(app: &App, event_id: &str) -> ApiResult<String> {
    let (event, seats) = inventory::seat_states(app, event_id).await?;
    let (mut located, states): (Vec<Located>, Vec<SeatState>) =
        seats.into_iter().map(|(s, h)| (s, SeatState::of(h))).unzip();
    // Events loaded before seat maps had positions: laid out now, the way a load would.
    inventory::auto_place(&mut located, 100);
    let seats: Vec<(&Located, SeatState)> = located.iter().zip(states).collect();
    Ok(render(&event, &seats))
}

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 does not allow at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The bounds of the drawing: min x, min y, max x, max y.
type Bounds = (i64, i64, i64, i64);

/// The stage: the seat map's, or a bar 40 units high above the seats, as wide as they are.
fn stage_of(event: &Event, seats: &[(&Located, SeatState)]) -> Stage {
    if let Some(stage) = &event.stage {
        return stage.clone();
    }
    let xs = seats.iter().filter_map(|(s, _)| s.x);
    let (min_x, max_x) = (xs.clone().min().unwrap_or(0), xs.max().unwrap_or(0));
    let min_y = seats.iter().filter_map(|(s, _)| s.y).min().unwrap_or(0);
    let width = (max_x - min_x).max(120);
    Stage {
        x: ((min_x + max_x) / 2).saturating_sub(width / 2),
        y: min_y.saturating_sub(80),
        width,
        height: 40,
        label: None,
    }
}

/// Renders the picture (see the module docs).
pub fn render(event: &Event, seats: &[(&Located, SeatState)]) -> String {
    let stage = stage_of(event, seats);
    let r = i64::from(SEAT_RADIUS);
    let mut b: Bounds = (i64::from(stage.x), i64::from(stage.y), i64::from(stage.x + stage.width), 0);
    b.3 = i64::from(stage.y + stage.height);
    for (s, _) in seats {
        let (x, y) = (i64::from(s.x.unwrap_or(0)), i64::from(s.y.unwrap_or(0)));
        b = (b.0.min(x - r - 40), b.1.min(y - r), b.2.max(x + r), b.3.max(y + r));
    }
    let legend_top = b.3 + 40;
    let legend_rows = event.price_categories.len() as i64 + 4;
    let (vx, vy) = (b.0 - MARGIN, b.1 - MARGIN);
    let width = (b.2 - b.0 + 2 * MARGIN).max(460);
    let height = legend_top + legend_rows * LEGEND_LINE - vy + MARGIN;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="{vx} {vy} {width} {height}" width="{width}" height="{height}" class="seatmap" role="img" aria-label="{title}" font-family="sans-serif">
<title>{title}</title>
<defs><pattern id="seat-hatch" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="5" height="5" fill="#eeeeee"/><line x1="0" y1="0" x2="0" y2="5" stroke="#888888" stroke-width="2"/></pattern></defs>
<rect class="background" x="{vx}" y="{vy}" width="{width}" height="{height}" fill="#ffffff"/>
"##,
        title = escape(&format!("Схема зала: {}", event.title)),
    );
    draw_stage(&mut out, &stage);
    draw_sectors(&mut out, seats);
    draw_rows(&mut out, seats);
    for (s, state) in seats {
        draw_seat(&mut out, event, s, *state);
    }
    draw_legend(&mut out, event, vx + 10, legend_top);
    out.push_str("</svg>\n");
    out
}

fn draw_stage(out: &mut String, stage: &Stage) {
    let label = escape(stage.label.as_deref().unwrap_or("Сцена"));
    let _ = writeln!(
        out,
        r##"<g class="stage"><rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="#3b3b4f"/><text x="{cx}" y="{cy}" fill="#ffffff" font-size="16" text-anchor="middle" dominant-baseline="middle">{label}</text></g>"##,
        x = stage.x,
        y = stage.y,
        w = stage.width,
        h = stage.height,
        cx = stage.x + stage.width / 2,
        cy = stage.y + stage.height / 2,
    );
}

/// Each sector's name, centred above its seats.
fn draw_sectors(out: &mut String, seats: &[(&Located, SeatState)]) {
    let mut sectors: Vec<(&str, &str, u32, u32, u32)> = Vec::new();
    for (s, _) in seats {
        let (place, x, y) = (&s.seat.place, s.x.unwrap_or(0), s.y.unwrap_or(0));
        match sectors.iter_mut().find(|(id, ..)| **id == *place.sector) {
            Some((_, _, min_x, max_x, min_y)) => {
                (*min_x, *max_x, *min_y) = ((*min_x).min(x), (*max_x).max(x), (*min_y).min(y));
            }
            None => sectors.push((&place.sector, &place.sector_name, x, x, y)),
        }
    }
    for (_, name, min_x, max_x, min_y) in sectors {
        let _ = writeln!(
            out,
            r##"<text class="sector-label" x="{x}" y="{y}" font-size="13" fill="#444444" text-anchor="middle">{name}</text>"##,
            x = (min_x + max_x) / 2,
            y = i64::from(min_y) - i64::from(SEAT_RADIUS) - 8,
            name = escape(name),
        );
    }
}

/// The row numbers, left of each row's first seat.
fn draw_rows(out: &mut String, seats: &[(&Located, SeatState)]) {
    let mut last: Option<(&str, &str)> = None;
    for (s, _) in seats {
        let place = &s.seat.place;
        if last == Some((&place.sector, &place.row)) {
            continue;
        }
        last = Some((&place.sector, &place.row));
        let (x, y) = (i64::from(s.x.unwrap_or(0)), i64::from(s.y.unwrap_or(0)));
        let _ = writeln!(
            out,
            r##"<text class="row-label" x="{x}" y="{y}" font-size="11" fill="#666666" text-anchor="end" dominant-baseline="middle">{row}</text>"##,
            x = x - i64::from(SEAT_RADIUS) - 8,
            row = escape(&place.row),
        );
    }
}

fn colour(event: &Event, category: &str) -> &'static str {
    let i = event.price_categories.iter().position(|c| c.id == category).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

fn draw_seat(out: &mut String, event: &Event, s: &Located, state: SeatState) {
    let place = &s.seat.place;
    let price = event.price_of(&place.price_category).unwrap_or_default();
    let title = format!(
        "{}, ряд {}, место {} — {} ₽",
        place.sector_name,
        place.row,
        place.seat,
        money::format(price)
    );
    let (x, y, r) = (s.x.unwrap_or(0), s.y.unwrap_or(0), SEAT_RADIUS);
    let shape = match state {
        SeatState::Free => format!(
            r##"<circle cx="{x}" cy="{y}" r="{r}" fill="{}"/>"##,
            colour(event, &place.price_category)
        ),
        SeatState::Held => {
            format!(
                r##"<circle cx="{x}" cy="{y}" r="{r}" fill="url(#seat-hatch)" stroke="#777777" stroke-width="2"/>"##
            )
        }
        SeatState::Sold => format!(
            r##"<circle cx="{x}" cy="{y}" r="{r}" fill="#4a4a4a"/><path d="M{a} {b}L{c} {d}M{a} {d}L{c} {b}" stroke="#bbbbbb" stroke-width="2"/>"##,
            a = x.saturating_sub(5),
            b = y.saturating_sub(5),
            c = x + 5,
            d = y + 5,
        ),
    };
    let number_fill = if state == SeatState::Free { "#ffffff" } else { "#222222" };
    let number = match state {
        SeatState::Sold => String::new(),
        _ => format!(
            r##"<text x="{x}" y="{y}" font-size="9" fill="{number_fill}" text-anchor="middle" dominant-baseline="central" pointer-events="none">{}</text>"##,
            escape(&place.seat)
        ),
    };
    let category = escape(&place.price_category);
    let _ = writeln!(
        out,
        r#"<g class="seat seat-{state} cat-{category}" data-seat-id="{id}" data-state="{state}" data-category="{category}"><title>{title}</title>{shape}{number}</g>"#,
        state = state.as_str(),
        id = escape(&s.seat.id),
        title = escape(&title),
    );
}

fn draw_legend(out: &mut String, event: &Event, x: i64, top: i64) {
    let _ = writeln!(out, r#"<g class="legend">"#);
    let _ = writeln!(
        out,
        r##"<text x="{x}" y="{top}" font-size="14" font-weight="bold" fill="#222222">Цены и места</text>"##
    );
    let mut y = top + LEGEND_LINE;
    let line = |out: &mut String, y: i64, class: &str, swatch: String, text: String| {
        let _ = writeln!(
            out,
            r##"<g class="{class}">{swatch}<text x="{tx}" y="{y}" font-size="13" fill="#222222" dominant-baseline="middle">{text}</text></g>"##,
            tx = x + 22,
        );
    };
    for (i, c) in event.price_categories.iter().enumerate() {
        let swatch = format!(
            r#"<circle cx="{cx}" cy="{y}" r="8" fill="{}"/>"#,
            PALETTE[i % PALETTE.len()],
            cx = x + 8
        );
        let text = escape(&format!("{} — {} ₽", c.name, money::format(c.price)));
        line(out, y, &format!("legend-category cat-{}", escape(&c.id)), swatch, text);
        y += LEGEND_LINE;
    }
    let cx = x + 8;
    let states = [
        ("free", format!(r#"fill="{}""#, PALETTE[0]), "свободно (цвет категории)"),
        (
            "held",
            r##"fill="url(#seat-hatch)" stroke="#777777" stroke-width="2""##.to_owned(),
            "в чьей-то брони",
        ),
        ("sold", r##"fill="#4a4a4a""##.to_owned(), "продано"),
    ];
    for (state, paint, text) in states {
        let swatch = format!(r#"<circle cx="{cx}" cy="{y}" r="8" {paint}/>"#);
        line(out, y, &format!("legend-state legend-{state}"), swatch, text.to_owned());
        y += LEGEND_LINE;
    }
    let _ = writeln!(out, "</g>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::inventory::{SeatMap, expand};

    fn map(json: &str) -> SeatMap {
        crate::http::parse_json(json.as_bytes()).expect("seat map")
    }

    #[test]
    fn the_demo_hall_draws_every_seat_with_its_state() {
        let (event, seats) = expand(&map(inventory::DEMO_SEAT_MAP), chrono::Utc::now()).unwrap();
        let states = [SeatState::Free, SeatState::Held, SeatState::Sold];
        let drawn: Vec<(&Located, SeatState)> =
            seats.iter().enumerate().map(|(i, s)| (s, states[i % 3])).collect();
        let svg = render(&event, &drawn);
        assert_eq!(svg.matches(r#"class="seat "#).count(), seats.len());
        assert_eq!(svg.matches(r#"data-state="sold""#).count(), seats.len() / 3);
        assert!(svg.contains("— 3500.00 ₽</title>"), "{svg}");
        assert!(seats.iter().all(|s| s.x.is_some() && s.y.is_some()));
    }

    #[test]
    fn text_from_the_seat_map_is_escaped() {
        assert_eq!(escape(r#"<script>&"'"#), "&lt;script&gt;&amp;&quot;&apos;");
        assert_eq!(escape("a\u{1}b"), "a\u{fffd}b");
    }
}
