# Sourced by the DD3G job files. split_variants LIST fills the array `variants` with LIST's
# comma-separated names, split only at commas outside brackets, so that a probe's list value
# (splatter_es+splatter.down_channels=[24,48,96,192]) stays whole, as train_small.py's
# tables.split_variants reads it.
split_variants() {
    variants=()
    local list=$1 name='' depth=0 k ch
    for ((k = 0; k < ${#list}; k++)); do
        ch=${list:k:1}
        case $ch in
            '[' | '(') depth=$((depth + 1)) ;;
            ']' | ')') depth=$((depth - 1)) ;;
        esac
        if [ "$ch" = , ] && [ "$depth" -eq 0 ]; then
            variants+=("$name")
            name=''
        else
            name+=$ch
        fi
    done
    variants+=("$name")
}
