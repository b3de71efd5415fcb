"""The demo app answers over TCP; the server stops cleanly on TERM."""

from conftest import exchange


def test_demo_page_and_clean_stop(start_server):
    server, (address,) = start_server("pronghorn.demo:app")
    response = exchange(address, b"GET /hi?x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"<code>/hi</code>" in response
    assert server.stop() == 0
