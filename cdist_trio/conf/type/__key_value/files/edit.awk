# Key/value editor shared by the __key_value explorer and the generated code.
# Inputs come from the environment (no escape processing):
#   __kv_mode   check (print the current state) | edit (print the new file)
#   __kv_state  present | absent
#   __kv_key, __kv_delimiter, __kv_value, __kv_comment, __kv_exact (non-empty = yes)
# Written from scratch for cdist-trio.
function is_key_line(l,    rest) {
    if (exact) return index(l, key delim) == 1
    sub(/^[ \t]+/, "", l)
    if (index(l, key) != 1) return 0
    rest = substr(l, length(key) + 1)
    if (tdelim == "") return rest ~ /^[ \t]/
    sub(/^[ \t]+/, "", rest)
    return index(rest, tdelim) == 1
}
function value_of(l,    rest) {
    if (exact) return substr(l, length(key delim) + 1)
    sub(/^[ \t]+/, "", l)
    rest = substr(l, length(key) + 1)
    sub(/^[ \t]+/, "", rest)
    rest = substr(rest, length(tdelim) + 1)
    sub(/^[ \t]+/, "", rest)
    return rest
}
BEGIN {
    mode = ENVIRON["__kv_mode"]
    state = ENVIRON["__kv_state"]
    key = ENVIRON["__kv_key"]
    delim = ENVIRON["__kv_delimiter"]
    value = ENVIRON["__kv_value"]
    comment = ENVIRON["__kv_comment"]
    exact = ENVIRON["__kv_exact"] != ""
    tdelim = delim
    gsub(/^[ \t]+|[ \t]+$/, "", tdelim)
    wanted = key delim value
    found = 0; status = "absent"
}
{
    if (!is_key_line($0)) {
        if (mode == "edit") print
        next
    }
    found++
    if (found == 1) {
        if ($0 == wanted) status = "present"
        else if (value_of($0) == value) status = "wrongformat"
        else status = "wrongvalue"
        if (mode == "edit" && state == "present") print wanted
    } else if (state == "present") {
        # duplicates of the key are dropped
        status = (status == "present") ? "wrongformat" : status
    }
}
END {
    if (mode == "edit") {
        if (state == "present" && !found) {
            if (comment != "") print comment
            print wanted
        }
        exit 0
    }
    if (state == "absent") print (found ? "present" : "absent")
    else print status
}
