# Line editor shared by the __line explorer and the generated code.
# Inputs come from the environment (no escape processing):
#   __line_mode    check (print the current state) | edit (print the new file)
#   __line_state   present | replace | absent
#   __line_line, __line_regex, __line_after, __line_before
# Written from scratch for cdist-trio.
BEGIN {
    mode = ENVIRON["__line_mode"]
    state = ENVIRON["__line_state"]
    line = ENVIRON["__line_line"]
    has_line = ENVIRON["__line_has_line"] != ""
    regex = ENVIRON["__line_regex"]
    after = ENVIRON["__line_after"]
    before = ENVIRON["__line_before"]
}
{ a[NR] = $0 }
END {
    n = 0; pos = 0; exact = 0; other = 0
    for (i = 1; i <= NR; i++) {
        hit = 0
        if (has_line && a[i] == line) { hit = 1; exact = 1 }
        else if (regex != "" && match(a[i], regex)) { hit = 1; other = 1 }
        if (hit) {
            if (!pos) pos = n + 1
            continue
        }
        b[++n] = a[i]
    }
    if (state == "absent") {
        m = n
        for (i = 1; i <= n; i++) c[i] = b[i]
    } else {
        ins = 0
        if (after != "") {
            for (k = 1; k <= n; k++) if (match(b[k], after)) { ins = k + 1; break }
        } else if (before != "") {
            for (k = 1; k <= n; k++) if (match(b[k], before)) { ins = k; break }
        }
        if (!ins) ins = pos ? pos : n + 1
        m = 0
        for (i = 1; i < ins; i++) c[++m] = b[i]
        c[++m] = line
        for (i = ins; i <= n; i++) c[++m] = b[i]
    }
    if (mode == "edit") {
        for (i = 1; i <= m; i++) print c[i]
        exit 0
    }
    same = (m == NR)
    for (i = 1; same && i <= m; i++) if (c[i] != a[i]) same = 0
    if (state == "absent") print (same ? "absent" : "present")
    else if (same) print "present"
    else if (other) print "matching"
    else if (exact) print "wrongposition"
    else print "absent"
}
