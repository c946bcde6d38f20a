//! The bodies Google's front ends answer with when the load balancer answers by itself.

/// The 502 of a load balancer with no healthy backend, or whose backend failed: Google's page,
/// as recorded in the troubleshooting section of the GCE ingress controller's README
/// (kubernetes/ingress, `controllers/gce/README.md`: "If you see a GET hanging, followed by a 502
/// with the following response") and in users' reports (terraform-google-modules/
/// terraform-google-lb-http#189, GoogleCloudPlatform/deploymentmanager-samples#399, with
/// `statusDetails: failed_to_pick_backend` in the load balancer's log).
pub(super) const SERVER_ERROR_502: &str = "<html><head>\n\
<meta http-equiv=\"content-type\" content=\"text/html;charset=utf-8\">\n\
<title>502 Server Error</title>\n\
</head>\n\
<body text=#000000 bgcolor=#ffffff>\n\
<h1>Error: Server Error</h1>\n\
<h2>The server encountered a temporary error and could not complete your request.<p>Please try again in 30 seconds.</h2>\n\
<h2></h2>\n\
</body></html>\n";

/// The 404 when nothing in the URL map answers (Google's front-end 404, in the shape the same
/// README records: `<p><b>404.</b> <ins>That’s an error.</ins> ... was not found on this
/// server. <ins>That’s all we know.</ins>`).
pub(super) fn not_found(path: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n  \
         <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>{}</code> was not found \
         on this server.  <ins>That’s all we know.</ins>\n",
        escape(path)
    )
}

/// The body of a redirect: the small page Google's front ends send with their own redirects
/// (`curl -i http://google.com/` answers `<TITLE>301 Moved</TITLE>` … "The document has moved
/// <A HREF=…>here</A>."). That URL-map redirects carry this very page is assumed, not captured.
pub(super) fn redirect(status: u16, location: &str) -> String {
    let location = escape(location);
    format!(
        "<HTML><HEAD><meta http-equiv=\"content-type\" content=\"text/html;charset=utf-8\">\n\
         <TITLE>{status} Moved</TITLE></HEAD><BODY>\n<H1>{status} Moved</H1>\nThe document has moved\n\
         <A HREF=\"{location}\">here</A>.\r\n</BODY></HTML>\r\n"
    )
}

/// Minimal HTML escaping for text echoed from a request.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_text_is_escaped() {
        assert!(not_found("/<script>").contains("/&lt;script&gt;"));
        assert!(redirect(301, "https://h/?a=\"b\"&c").contains("https://h/?a=&quot;b&quot;&amp;c"));
        assert!(SERVER_ERROR_502.contains("Please try again in 30 seconds."));
    }
}
