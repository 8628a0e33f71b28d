"""The status page's HTML: the operator's overview (`/`, overview.py) and one group's page
(`/group/<cluster>/<group>`, group.py) with its window charts (chart.py), in the document and words of
markup.py, from the clusters as cluster_state.py describes them. Pure; the routes are exposition/pages.py.

Everything is rendered here, on the server, from the evaluator's statuses and the storage's snapshots,
and every name (cluster, group, topic, owner, client id: user input all) goes through `html.escape`. The
page's script (static/page.js) only swaps in fragments this package rendered, so it never builds markup from
data. Nothing is fetched from anywhere but lagwatch itself: no fonts, no libraries, no CDN; the charts are
inline SVG.
"""
