<?xml version="1.0" encoding="UTF-8"?>
<!-- Makes a feed readable when opened in a browser; feed readers ignore it. -->
<xsl:stylesheet version="1.0"
  xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
  xmlns:atom="http://www.w3.org/2005/Atom">
<xsl:output method="html" encoding="UTF-8" indent="yes"/>
<xsl:template match="/">
<html>
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<title><xsl:value-of select="/rss/channel/title | /atom:feed/atom:title"/> (web feed)</title>
<style>body{font:1rem/1.6 system-ui,sans-serif;max-width:44rem;margin:0 auto;padding:1rem}.note{background:#fff8c5;padding:.5rem 1rem}</style>
</head>
<body>
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
</body>
</html>
</xsl:template>
</xsl:stylesheet>
