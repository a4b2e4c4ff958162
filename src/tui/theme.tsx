// Colour on or off for the whole preview (NO_COLOR), read by the one component that paints.
import { Text } from 'ink';
import { type ReactNode, createContext, useContext } from 'react';

export const ColorContext = createContext(true);

export type Hue = 'green' | 'red' | 'yellow' | 'cyan' | 'blue' | 'magenta' | 'gray';

/** Text in a colour, or plain when colour is off (selections then rely on their `>` marker). */
export function Paint(props: { hue?: Hue; bold?: boolean; inverse?: boolean; dim?: boolean; children: ReactNode }) {
  const color = useContext(ColorContext);
  return (
    <Text
      {...(color && props.hue ? { color: props.hue } : {})}
      {...(color && props.dim ? { dimColor: true } : {})}
      {...(color && props.bold ? { bold: true } : {})}
      {...(color && props.inverse ? { inverse: true } : {})}
    >
      {props.children}
    </Text>
  );
}

export const verdictHue = { accept: 'green', drop: 'red', reject: 'yellow' } as const satisfies Record<string, Hue>;
