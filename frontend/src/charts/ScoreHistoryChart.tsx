// An account's daily score as a line (recharts, loaded only with the account page), with the tier
// thresholds' usual bands left to the tier badge: the line says where the score has been.
import { CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';

export default function ScoreHistoryChart({ points }: { points: { date: string; score: number; tier: string }[] }) {
  const data = points.map((p) => ({ date: p.date.slice(5), score: p.score, tier: p.tier }));
  return (
    <div style={{ height: 160, marginTop: 8 }} role="img" aria-label={`Daily score over ${points.length} captured days`}>
      <ResponsiveContainer width="100%" height="100%">
        <LineChart data={data} margin={{ left: -16, right: 16, top: 8 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="date" tick={{ fontSize: 11 }} minTickGap={16} />
          <YAxis domain={[0, 100]} tick={{ fontSize: 11 }} width={40} />
          <Tooltip formatter={(v, _n, item) => [`${v} (${item?.payload?.tier?.toLowerCase() ?? ''})`, 'score']} />
          <Line type="monotone" dataKey="score" stroke="#1c7ed6" strokeWidth={2} dot={points.length < 20} isAnimationActive={false} />
        </LineChart>
      </ResponsiveContainer>
    </div>
  );
}
