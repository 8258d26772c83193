<?xml version="1.0" encoding="UTF-8"?>
<!-- Makes the OPML list of feeds readable when opened in a browser; feed readers
     importing it ignore this. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="html" encoding="UTF-8" indent="yes"/>
<xsl:template match="/">
<html lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<meta name="color-scheme" content="light dark"/>
<title><xsl:value-of select="/opml/head/title"/>: every feed (OPML)</title>
<style>
:root{color-scheme:light dark;--bg:#fdfdfb;--text:#1c1c1c;--muted:#545454;--note:#f2f2ee;--link:#0b50b8}
@media (prefers-color-scheme:dark){:root{--bg:#161616;--text:#e9e9e6;--muted:#b4b4ae;--note:#222220;--link:#8ab4ff}}
body{font:1.0625rem/1.65 system-ui,sans-serif;max-width:40rem;margin:0 auto;padding:1rem 1.25rem;background:var(--bg);color:var(--text)}
a{color:var(--link)}.note{background:var(--note);padding:.75rem 1rem;border-radius:6px}
li{margin:.6rem 0}code{font-size:.9em;color:var(--muted);word-break:break-all}
</style>
</head>
<body>
<main>
<p class="note">This is an OPML file: a list of feeds. Import its address into a feed reader to follow them all at once, or pick one below.</p>
<h1><xsl:value-of select="/opml/head/title"/>: every feed</h1>
<ul>
<xsl:for-each select="/opml/body/outline">
<li><a href="{@htmlUrl}"><xsl:value-of select="@title"/></a><br/><code><xsl:value-of select="@xmlUrl"/></code></li>
</xsl:for-each>
</ul>
</main>
</body>
</html>
</xsl:template>
</xsl:stylesheet>
