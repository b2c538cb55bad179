/* Result page: the picture of what was analysed, from this browser tab only.
 *
 * The upload page keeps a small copy of what it sent in sessionStorage, under the
 * result's id (outline.js, keepThumbnail). It never leaves the browser, goes when the
 * tab is closed, and another browser or device showing this result simply has none.
 */
(function () {
  "use strict";

  var area = document.getElementById("analysed-area");
  var image = document.getElementById("analysed-image");
  if (!area || !image || !area.dataset.messageId) return;
  var picture = null;
  try {
    picture = window.sessionStorage.getItem("hg-analysed:" + area.dataset.messageId);
  } catch (e) {
    return; // storage refused (private mode, policy): no picture
  }
  // Only what this site's page stored, and only as an inline picture.
  if (!picture || !/^data:image\/(png|jpeg);base64,/.test(picture)) return;
  image.onload = function () {
    area.hidden = false;
  };
  image.src = picture;
})();
