use super::*;

fn routed(routes: &str) -> String {
    format!(
        "[[listener]]\nlisten = \"127.0.0.1:8080\"\n{routes}[[pool]]\nname = \"web\"\n{QUIET}{TWO}[[pool]]\nname = \"api\"\n{QUIET}{TWO}"
    )
}

#[test]
fn route_shadowed_by_a_broader_earlier_route() {
    let text = routed(
        "[[route]]\npath_prefix = \"/api\"\npool = \"web\"\n[[route]]\npath_prefix = \"/api/v2\"\npool = \"api\"\n[[route]]\npool = \"web\"\n",
    );
    let d = one(&text, "TNG018");
    assert_eq!(
        d.message,
        "route 1 (*/api/v2 -> api) never matches: route 0 (*/api -> web) comes first and matches all of its requests"
    );
    assert_eq!(at(&text, "TNG018"), vec![(7, 15)]);
    // Specific first, broad last: fine. A host-specific route is not shadowed by another host.
    let text = routed(
        "[[route]]\npath_prefix = \"/api/v2\"\npool = \"api\"\n[[route]]\nhost = \"a.example\"\npool = \"web\"\n[[route]]\nhost = \"b.example\"\npool = \"api\"\n[[route]]\npool = \"web\"\n",
    );
    assert!(at(&text, "TNG018").is_empty());
}

#[test]
fn pool_no_route_sends_traffic_to() {
    let text = routed("[[route]]\npool = \"web\"\n");
    // `name = "api"` of the second pool.
    assert_eq!(at(&text, "TNG019"), vec![(16, 8)]);
    let text =
        routed("[[route]]\nhost = \"api.example\"\npool = \"api\"\n[[route]]\npool = \"web\"\n");
    assert!(at(&text, "TNG019").is_empty());
}
