// reveal.js starts once MathJax has typeset the equations, so that it lays out every slide
// at its final size. 1280x720 is the slide size the deck test checks every slide against.
document.addEventListener("DOMContentLoaded", async () => {
  await MathJax.startup.promise;
  Reveal.initialize({
    width: 1280,
    height: 720,
    margin: 0.02,
    center: false,
    display: "flex", // slides/deck.css: figures shrink into the height that text leaves
    hash: true,
    slideNumber: "c/t",
    transition: "none",
    pdfSeparateFragments: false, // printed: one page a slide, its fragments shown
    pdfMaxPagesPerSlide: 1,
    plugins: [RevealNotes],
  });
});
