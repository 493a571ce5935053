-- What carried a call: 'sip' (a phone call over SIP/RTP) or 'webrtc' (a
-- browser over WebRTC). Calls recorded before this column were all SIP.
ALTER TABLE calls ADD COLUMN channel TEXT NOT NULL DEFAULT 'sip';
