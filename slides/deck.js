// reveal.js starts once MathJax has typeset the equations, so that it lays out every slide
// at its final size. 1280x720 is the slide size the deck test checks every slide against.
document.addEventListener("DOMContentLoaded", async () => {
  await MathJax.startup.promise;
  Reveal.initialize({
    width: 1280,
    height: 720,
    margin: 0.02,
    center: false,
    hash: true,
    slideNumber: "c/t",
    transition: "none",
    plugins: [RevealNotes],
  });
});
