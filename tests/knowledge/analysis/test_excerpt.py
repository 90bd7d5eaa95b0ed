"""How far the excerpt reaches around the failure it found: where it starts and where it ends."""

from __future__ import annotations

from devmesh.knowledge.analysis import EXCERPT_MAX, analyze_log


def _shown(lines: list[str]) -> list[str]:
    return [e.text for e in analyze_log(lines).excerpt]


def test_a_scalatest_failure_ends_where_the_runner_moves_on_to_the_next_test() -> None:
    lines = [
        "[info] CartSpec:",
        "[info] - adds items",
        "[info] - applies the discount *** FAILED ***",
        "[info]   18.0 did not equal 17.0 (CartSpec.scala:21)",
        "[info]   at org.scalatest.Assertions.newAssertionFailedException(Assertions.scala:528)",
        "[info] - removes items",
        "[info] - empties the cart",
        "[info] Run completed in 2 seconds.",
    ]
    shown = _shown(lines)
    assert "[info] - applies the discount *** FAILED ***" in shown
    assert "[info]   18.0 did not equal 17.0 (CartSpec.scala:21)" in shown
    assert "[info] - removes items" not in shown


def test_error_level_log_lines_leading_into_a_test_verdict_are_left_out() -> None:
    lines = [
        "12:00:01.001 [info] session opened",
        "12:00:01.002 [error] worker <0.123.0> terminated with reason: badarg",
        "12:00:01.003 [info] session closed",
        "",
        "cart_SUITE:add_item failed on line 42",
        "Reason: {badmatch,{error,timeout}}",
    ]
    shown = _shown(lines)
    assert shown[0] == "cart_SUITE:add_item failed on line 42"
    assert "Reason: {badmatch,{error,timeout}}" in shown


def test_a_compiler_s_errors_separated_by_blank_lines_are_shown_together() -> None:
    lines = [
        "[3 of 9] Compiling Cart.Total",
        "",
        "src/Cart/Total.hs:12:5: error:",
        "    Variable not in scope: cuont :: Int",
        "",
        "src/Cart/Total.hs:20:9: error:",
        "    Not in scope: type constructor or class \u2018Prise\u2019",
        "",
        "--  While building package cart-0.1.0 using:",
    ]
    shown = _shown(lines)
    assert "    Variable not in scope: cuont :: Int" in shown
    assert "src/Cart/Total.hs:20:9: error:" in shown
    assert "--  While building package cart-0.1.0 using:" not in shown


def test_test_failures_separated_by_blank_lines_stop_at_the_first() -> None:
    lines = [
        "  \u25cf cart \u203a adds tax",
        "",
        "    expect(received).toBe(expected)",
        "",
        "  \u25cf cart \u203a removes items",
        "",
        "    TypeError: cart.remove is not a function",
    ]
    shown = _shown(lines)
    assert "    expect(received).toBe(expected)" in shown
    assert "  \u25cf cart \u203a removes items" not in shown


def test_a_long_stack_trace_is_shown_up_to_the_cap() -> None:
    frames = [f"\tat com.example.cart.Layer{n}.call(Layer{n}.java:{n})" for n in range(60)]
    lines = [
        "Running com.example.cart.CartTest",
        "Tests run: 3, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.1 sec <<< FAILURE!",
        "addsTax(com.example.cart.CartTest)  Time elapsed: 0.01 sec  <<< FAILURE!",
        "java.lang.AssertionError: expected:<17> but was:<18>",
        *frames,
    ]
    shown = _shown(lines)
    assert len(shown) == EXCERPT_MAX
    assert frames[EXCERPT_MAX - 10] in shown


def test_a_bare_error_headline_running_into_its_detail_stays_in_the_excerpt() -> None:
    lines = [
        "Acceptance: cart::remove item",
        "Error while processing route: cart.index",
        "TypeError: Cannot read property 'items' of undefined",
        "    at eval (cart/models/cart:48:73)",
        "    at Array.map (<anonymous>)",
    ]
    shown = _shown(lines)
    assert "Error while processing route: cart.index" in shown
    assert "    at Array.map (<anonymous>)" in shown
