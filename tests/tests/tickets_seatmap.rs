//! The drawn seat map, `GET /api/v1/events/{event_id}/seatmap.svg`, on the local server
//! (memory store): one seat element per seat with its state after a hold and after a paid
//! order, the legend, positions from the seat map honoured, bad positions refused naming
//! their field (positions also stored and read back on DynamoDB, moto), and names from the seat
//! map escaped.

mod tickets_support;

use std::collections::BTreeMap;

use api_tests::TestServer;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde_json::{Value, json};
use tickets_support::{Buyer, admin, create_event, online_order, seat_map};

/// One seat element of the picture.
#[derive(Debug, Default, Clone)]
struct SeatElement {
    state: String,
    class: String,
    title: String,
    cx: String,
    cy: String,
}

/// What a front end reads of the picture.
#[derive(Debug, Default)]
struct Picture {
    seats: BTreeMap<String, SeatElement>,
    legend: Vec<String>,
    texts: Vec<String>,
}

fn attr(e: &BytesStart, name: &str) -> Option<String> {
    e.attributes().flatten().find(|a| a.key.as_ref() == name.as_bytes()).map(|a| {
        quick_xml::escape::unescape(std::str::from_utf8(&a.value).expect("UTF-8"))
            .expect("entity")
            .into_owned()
    })
}

fn entity(name: &str) -> &'static str {
    match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "quot" => "\"",
        "apos" => "'",
        other => panic!("unexpected entity &{other};"),
    }
}

/// Where the parser is: inside which seat, inside a legend line, the text so far.
#[derive(Default)]
struct Cursor {
    seat: Option<String>,
    legend_line: bool,
    text: String,
    depth: i32,
}

fn open(e: &BytesStart, picture: &mut Picture, at: &mut Cursor) {
    let class = attr(e, "class").unwrap_or_default();
    if let Some(id) = attr(e, "data-seat-id") {
        let state = attr(e, "data-state").expect("data-state");
        let old = picture.seats.insert(id.clone(), SeatElement { state, class, ..Default::default() });
        assert!(old.is_none(), "seat {id} drawn twice");
        at.seat = Some(id);
    } else if e.name().as_ref() == b"circle"
        && let Some(s) = at.seat.as_ref().and_then(|id| picture.seats.get_mut(id))
    {
        (s.cx, s.cy) = (attr(e, "cx").expect("cx"), attr(e, "cy").expect("cy"));
    } else if class.starts_with("legend-") {
        at.legend_line = true;
    }
    at.text.clear();
}

fn close(name: &[u8], picture: &mut Picture, at: &mut Cursor) {
    if !at.text.is_empty() {
        picture.texts.push(at.text.clone());
        if name == b"title"
            && let Some(s) = at.seat.as_ref().and_then(|id| picture.seats.get_mut(id))
        {
            s.title = at.text.clone();
        } else if at.legend_line && name == b"text" {
            picture.legend.push(at.text.clone());
            at.legend_line = false;
        }
    }
    if name == b"g" {
        at.seat = None;
    }
    at.text.clear();
}

/// Parses the SVG as XML (an ill-formed document fails the test) and collects the seats (by
/// `data-seat-id`), their titles and circles, the legend's lines and every text.
fn parse(svg: &str) -> Picture {
    let mut reader = Reader::from_str(svg);
    let (mut picture, mut at) = (Picture::default(), Cursor::default());
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("not XML: {e}\n{svg}")) {
            Event::Start(e) => {
                open(&e, &mut picture, &mut at);
                at.depth += 1;
            }
            Event::Empty(e) => open(&e, &mut picture, &mut at),
            Event::Text(t) => at.text.push_str(&t.decode().expect("UTF-8")),
            Event::GeneralRef(r) => at.text.push_str(entity(&r.decode().expect("UTF-8"))),
            Event::End(e) => {
                at.depth -= 1;
                close(e.name().as_ref(), &mut picture, &mut at);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(at.depth, 0, "unclosed elements");
    picture
}

/// The event's picture: 200, `image/svg+xml`, parsed.
async fn picture(srv: &TestServer, event: &str) -> (String, Picture) {
    let res = srv.http.get(srv.url(&format!("/api/v1/events/{event}/seatmap.svg"))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    let svg = res.text().await.unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{svg}");
    let parsed = parse(&svg);
    (svg, parsed)
}

fn states(p: &Picture) -> BTreeMap<&str, Vec<&str>> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, s) in &p.seats {
        out.entry(s.state.as_str()).or_default().push(id.as_str());
    }
    out
}

#[tokio::test]
async fn every_seat_is_drawn_with_its_state_after_a_hold_and_a_paid_order() {
    let srv = TestServer::memory().await;
    create_event(&srv, "pic").await;
    let (_, p) = picture(&srv, "pic").await;
    assert_eq!(p.seats.len(), 20, "one element per seat");
    assert_eq!(states(&p).get("free").map(Vec::len), Some(20));
    let s = &p.seats["s-1-1"];
    assert_eq!(s.title, "Stalls, ряд 1, место 1 — 1000.00 ₽");
    assert!(
        s.class.starts_with("seat ") && s.class.contains("seat-free") && s.class.contains("cat-A"),
        "{s:?}"
    );
    assert_eq!(p.seats["s-2-10"].title, "Stalls, ряд 2, место 10 — 500.50 ₽");
    for line in
        ["Front — 1000.00 ₽", "Back — 500.50 ₽", "свободно (цвет категории)", "в чьей-то брони", "продано"]
    {
        assert!(p.legend.iter().any(|l| l == line), "legend lacks {line:?}: {:?}", p.legend);
    }
    // The automatic layout: rows one under another, seats left to right.
    let (a, b, c) = (&p.seats["s-1-1"], &p.seats["s-1-2"], &p.seats["s-2-1"]);
    assert_eq!(a.cy, b.cy);
    assert!(a.cx.parse::<u32>().unwrap() < b.cx.parse::<u32>().unwrap());
    assert!(a.cy.parse::<u32>().unwrap() < c.cy.parse::<u32>().unwrap());

    let mut holder = Buyer::anonymous(&srv);
    let pr = holder.init("pic").await;
    assert_eq!(holder.hold(&pr, "s-1-3").await.0, 200);
    let (order, url) = online_order(&srv, "pic", &["s-2-4", "s-2-5"], "self_online").await;
    let (_, p) = picture(&srv, "pic").await;
    let expected = BTreeMap::from([
        ("held", vec!["s-1-3", "s-2-4", "s-2-5"]),
        (
            "free",
            p.seats
                .keys()
                .map(String::as_str)
                .filter(|id| !["s-1-3", "s-2-4", "s-2-5"].contains(id))
                .collect(),
        ),
    ]);
    // An order waiting for its payment keeps its seats sold to it.
    let got = states(&p);
    assert_eq!(got.get("free"), expected.get("free"));
    assert_eq!(got.get("held"), Some(&vec!["s-1-3"]), "{got:?}");
    assert_eq!(got.get("sold"), Some(&vec!["s-2-4", "s-2-5"]), "{got:?}");
    assert!(p.seats["s-1-3"].class.contains("seat-held"));

    let (status, _) = api_tests::press(&srv, &url, "succeeded").await;
    assert_eq!(status, 303);
    let (_, body) = srv.get(&format!("/api/v1/admin/ticket_orders/{order}"), Some(&admin())).await;
    assert_eq!(body["order"]["status"], "approved", "{body}");
    let (_, p) = picture(&srv, "pic").await;
    assert_eq!(states(&p).get("sold"), Some(&vec!["s-2-4", "s-2-5"]));
    assert!(p.seats["s-2-4"].class.contains("seat-sold"));
    // The seat list agrees.
    let (_, list) = srv.get("/api/v1/events/pic/seats", None).await;
    assert_eq!(list["free_count"], 17);
}

#[tokio::test]
async fn an_unknown_event_is_404_json() {
    let srv = TestServer::memory().await;
    for id in ["nope", "bad%20id"] {
        let (status, body) = srv.get(&format!("/api/v1/events/{id}/seatmap.svg"), None).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "not_found", "{body}");
    }
}

/// The test seat map with positions: a stage, row 1 along a curved line, row 2 straight with
/// seat 10 placed by hand.
fn positioned(id: &str) -> Value {
    let mut map = seat_map(id);
    map["stage"] = json!({"x": 100, "y": 10, "width": 300, "height": 40, "label": "Эстрада"});
    let rows = &mut map["sectors"][0]["rows"];
    rows[0]["x"] = json!(110);
    rows[0]["y"] = json!(120);
    rows[0]["step"] = json!(32);
    rows[0]["bend"] = json!(9);
    rows[1]["x"] = json!(100);
    rows[1]["y"] = json!(200);
    rows[1]["seat_positions"] = json!([{"seat": "10", "x": 700, "y": 260}]);
    map
}

#[tokio::test]
async fn positions_from_the_seat_map_are_honoured() {
    positions(TestServer::memory().await).await;
}

#[tokio::test]
async fn dynamo_positions_from_the_seat_map_are_honoured() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    positions(TestServer::start(store).await).await;
}

async fn positions(srv: TestServer) {
    let (status, body) = srv.post("/api/v1/admin/events", Some(&admin()), &positioned("hall")).await;
    assert_eq!(status, 201, "{body}");
    let (svg, p) = picture(&srv, "hall").await;
    let at = |id: &str| (p.seats[id].cx.as_str(), p.seats[id].cy.as_str());
    // Row 1: x from 110 every 32; its ends 9 units nearer the stage than its middle.
    assert_eq!(at("s-1-1"), ("110", "111"));
    assert_eq!(at("s-1-2"), ("142", "115"));
    assert_eq!(at("s-1-10"), ("398", "111"));
    assert!(p.seats["s-1-5"].cy.parse::<u32>().unwrap() >= 119);
    // Row 2: the default step of 30, seat 10 where it was put.
    assert_eq!(at("s-2-1"), ("100", "200"));
    assert_eq!(at("s-2-9"), ("340", "200"));
    assert_eq!(at("s-2-10"), ("700", "260"));
    assert!(svg.contains(r#"<rect x="100" y="10" width="300" height="40""#), "{svg}");
    assert!(p.texts.iter().any(|t| t == "Эстрада"));
    // The seat list answers the same positions.
    let (_, list) = srv.get("/api/v1/events/hall/seats", None).await;
    let seat = list["seats"].as_array().unwrap().iter().find(|s| s["id"] == "s-2-10").unwrap().clone();
    assert_eq!((seat["x"].clone(), seat["y"].clone()), (json!(700), json!(260)));
}

#[tokio::test]
async fn a_bad_position_is_refused_naming_its_field() {
    let srv = TestServer::memory().await;
    let cases: [(&str, &str, Value, &str); 9] = [
        ("x", "row", json!(-5), "sectors[0].rows[0].x"),
        ("x", "row", json!(12.5), "sectors[0].rows[0].x"),
        ("x", "row", json!("10"), "sectors[0].rows[0].x"),
        ("y", "row", json!(10_001), "sectors[0].rows[0].y"),
        ("step", "row", json!(2000), "sectors[0].rows[0].step"),
        ("bend", "row", json!(500), "sectors[0].rows[0].bend"),
        (
            "seat_positions",
            "row",
            json!([{"seat": "99", "x": 1, "y": 1}]),
            "sectors[0].rows[0].seat_positions[0].seat",
        ),
        (
            "seat_positions",
            "row",
            json!([{"seat": "1", "x": 1, "y": 99999}]),
            "sectors[0].rows[0].seat_positions[0].y",
        ),
        ("width", "stage", json!(0), "stage.width"),
    ];
    for (k, (name, place, value, field)) in cases.into_iter().enumerate() {
        let mut map = positioned(&format!("bad{k}"));
        match place {
            "row" => map["sectors"][0]["rows"][0][name] = value.clone(),
            _ => map["stage"][name] = value.clone(),
        }
        let (status, body) = srv.post("/api/v1/admin/events", Some(&admin()), &map).await;
        assert_eq!(status, 422, "{name} = {value}: {body}");
        assert_eq!(body["error"]["field"], field, "{name} = {value}: {body}");
    }
    // x without y, y without x.
    let mut map = seat_map("bad-x");
    map["sectors"][0]["rows"][1]["x"] = json!(10);
    let (status, body) = srv.post("/api/v1/admin/events", Some(&admin()), &map).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("sectors[0].rows[1].y")), "{body}");
    // None of them was created.
    let (_, events) = srv.get("/api/v1/events", None).await;
    assert_eq!(events["events"].as_array().map(Vec::len), Some(0), "{events}");
}

#[tokio::test]
async fn names_from_the_seat_map_come_out_escaped() {
    let srv = TestServer::memory().await;
    let mut map = seat_map("xss");
    let hostile = "<script>alert('x')</script>";
    map["title"] = json!(format!("Gala {hostile}"));
    map["sectors"][0]["name"] = json!(hostile);
    map["price_categories"][0]["name"] = json!("A & B \"best\" <img src=x onerror=alert(1)>");
    map["stage"] = json!({"x": 0, "y": 0, "width": 200, "height": 30, "label": "</text><script>1</script>"});
    let (status, body) = srv.post("/api/v1/admin/events", Some(&admin()), &map).await;
    assert_eq!(status, 201, "{body}");
    let (svg, p) = picture(&srv, "xss").await;
    assert!(!svg.contains("<script") && !svg.contains("<img"), "{svg}");
    assert!(svg.contains("&lt;script&gt;"), "{svg}");
    assert_eq!(p.seats["s-1-1"].title, format!("{hostile}, ряд 1, место 1 — 1000.00 ₽"));
    assert!(
        p.legend.contains(&"A & B \"best\" <img src=x onerror=alert(1)> — 1000.00 ₽".to_owned()),
        "{:?}",
        p.legend
    );
    assert!(p.texts.iter().any(|t| t == "</text><script>1</script>"));
    assert!(p.texts.iter().any(|t| t == &format!("Схема зала: Gala {hostile}")));
}
