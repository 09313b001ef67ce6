// Render public/icons/icon.svg to the PNG icons the web manifest lists (192, 512, and a 512 "maskable"
// one with the safe-zone padding), with Debian's Chromium through playwright-core from sdk/node_modules.
// The PNGs are committed; run this only after changing the SVG:  npm run icons
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const { chromium } = createRequire(here("../../sdk/package.json"))("playwright-core");
const svg = readFileSync(here("../public/icons/icon.svg"), "utf8");
const browser = await chromium.launch({ executablePath: process.env.HEARTH_CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  const render = async (size, pad, bg, out) => {
    await page.setViewportSize({ width: size, height: size });
    const inner = size - 2 * pad;
    await page.setContent(
      `<html><body style="margin:0;background:${bg};width:${size}px;height:${size}px;display:grid;place-items:center">` +
        `<div style="width:${inner}px;height:${inner}px">${svg.replace("<svg ", `<svg width="${inner}" height="${inner}" `)}</div></body></html>`,
    );
    writeFileSync(here(`../public/icons/${out}`), await page.screenshot({ omitBackground: bg === "transparent" }));
    console.log(`wrote public/icons/${out}`);
  };
  await render(192, 0, "transparent", "icon-192.png");
  await render(512, 0, "transparent", "icon-512.png");
  await render(512, 64, "#d9480f", "icon-maskable-512.png");
} finally {
  await browser.close();
}
