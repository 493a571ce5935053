# Sourced by load-tests/spoken-eval.sh and load-tests/asr-confidence.sh:
# speak_questions VOICE QUESTIONS.txt DIR speaks each line of QUESTIONS.txt
# with VOICE (piper: voxline's own Piper voice, through $VOXLINE; espeak:
# espeak-ng, a voice the tests never use) into DIR/raw-N.wav and makes it
# 8 kHz mono 16-bit, as a phone line carries it: DIR/q-N.wav. Prints N.
speak_questions() {
	local voice=$1 questions=$2 dir=$3 n=0 q
	while IFS= read -r q; do
		n=$((n + 1))
		case $voice in
		piper) "$VOXLINE" say --out "$dir/raw-$n.wav" "$q" >/dev/null 2>&1 ;;
		espeak) espeak-ng -v en-us -s 160 -w "$dir/raw-$n.wav" "$q" ;;
		*) echo "voice must be piper or espeak, not $voice" >&2; return 2 ;;
		esac
		sox "$dir/raw-$n.wav" -r 8000 -c 1 -b 16 "$dir/q-$n.wav"
	done <"$questions"
	echo "$n"
}
