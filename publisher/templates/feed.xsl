<?xml version="1.0" encoding="UTF-8"?>
<!-- Makes a feed readable when opened in a browser; feed readers ignore it. -->
<xsl:stylesheet version="1.0"
  xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
  xmlns:atom="http://www.w3.org/2005/Atom">
<xsl:output method="html" encoding="UTF-8" indent="yes"/>
<xsl:template match="/">
<html lang="{/rss/channel/language | /atom:feed/@xml:lang}">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<meta name="color-scheme" content="light dark"/>
<title><xsl:value-of select="/rss/channel/title | /atom:feed/atom:title"/> (web feed)</title>
<style>
:root{color-scheme:light dark;--bg:#fdfdfb;--text:#1c1c1c;--muted:#545454;--note:#f2f2ee;--link:#0b50b8}
@media (prefers-color-scheme:dark){:root{--bg:#161616;--text:#e9e9e6;--muted:#b4b4ae;--note:#222220;--link:#8ab4ff}}
body{font:1.0625rem/1.65 system-ui,sans-serif;max-width:40rem;margin:0 auto;padding:1rem 1.25rem;background:var(--bg);color:var(--text)}
a{color:var(--link)}.note{background:var(--note);padding:.75rem 1rem;border-radius:6px}
li{margin:.5rem 0}small{color:var(--muted);white-space:nowrap}
</style>
</head>
<body>
<main>
<p class="note">This is a web feed. Copy this page's address into a feed reader to subscribe.</p>
<h1><xsl:value-of select="/rss/channel/title | /atom:feed/atom:title"/></h1>
<ol>
<xsl:for-each select="/rss/channel/item">
<li><a href="{link}"><xsl:value-of select="title"/></a> <small> <xsl:value-of select="pubDate"/></small></li>
</xsl:for-each>
<xsl:for-each select="/atom:feed/atom:entry">
<li><a href="{atom:link/@href}"><xsl:value-of select="atom:title"/></a> <small> <xsl:value-of select="substring(atom:published, 1, 10)"/></small></li>
</xsl:for-each>
</ol>
</main>
</body>
</html>
</xsl:template>
</xsl:stylesheet>
